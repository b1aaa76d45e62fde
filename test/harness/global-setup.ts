// Placeholder: replaced by the test-harness work (clusters, OS user, TLS material, teardown).
export default function setup(): void {}
