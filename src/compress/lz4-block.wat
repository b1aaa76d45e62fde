;; LZ4 block compression (lz4's doc/lz4_Block_format.md) in WebAssembly text, our own: the block half of
;; src/compress/codec.ts's lz4 frame writer. Built with wabt's `wat2wasm` into src/compress/lz4-block-wasm.ts
;; (see there); nothing is built at install. Written by hand because both earlier block compressors cost
;; more CPU than liblz4, which pg_receivewal and pg_basebackup use: our JavaScript (bounds-checked byte
;; loads) and lz4_flex's WebAssembly build (the package lz4-wasm-nodejs). This one reads 8 bytes at a time
;; where a match is extended (i64 xor, ctz) and copies literals with memory.copy (docs/design.md).
;;
;; The matching is LZ4's fast one: a 4096-entry hash of the next 4 bytes (Knuth's multiplier), the search
;; step growing by one after every 64 misses (LZ4's acceleration 1), matches extended backwards over
;; pending literals, and the format's end rules (the last 5 bytes are literals, no match starts in the last
;; 12, blocks under 13 bytes are all literals). Memory: the hash table at bytes [0, 16384), holding
;; positions relative to the block's start; the caller puts input and output above it. Up to 4 bytes past
;; the input's end may be read (a short literal run is copied as 16 bytes), so memory must follow it.
(module
  (memory (export "memory") 1)
  ;; compress(src, n, dst, cap, probe): compresses the n bytes at src into dst; returns the length written,
  ;; or -1 when it would exceed cap bytes, or (probe > 0) when, at the first sequence that starts probe or
  ;; more bytes into the block, the output so far is over 19/20 of the input it covers: the caller then
  ;; stores the block. Blocks that LZ4 shrinks by less than 5% (random bytes with a few headers between
  ;; them, as WAL of TOASTed compressed data is) would otherwise cost as much as any other to compress.
  (func (export "compress") (param $src i32) (param $n i32) (param $dst i32) (param $cap i32) (param $probe i32) (result i32)
    (local $end i32) (local $mflimit i32) (local $matchlimit i32) (local $anchor i32) (local $ip i32)
    (local $fwd i32) (local $step i32) (local $tries i32) (local $ref i32) (local $seq i32) (local $h i32)
    (local $op i32) (local $oend i32) (local $tok i32) (local $lit i32) (local $len i32) (local $x i64) (local $probeAt i32)
    (local.set $end (i32.add (local.get $src) (local.get $n)))
    (local.set $op (local.get $dst))
    (local.set $oend (i32.add (local.get $dst) (local.get $cap)))
    (local.set $anchor (local.get $src))
    (local.set $probeAt (if (result i32) (local.get $probe) (then (i32.add (local.get $src) (local.get $probe))) (else (i32.const -1))))
    (block $last
      (br_if $last (i32.lt_u (local.get $n) (i32.const 13)))
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 16384))
      (local.set $mflimit (i32.sub (local.get $end) (i32.const 12)))
      (local.set $matchlimit (i32.sub (local.get $end) (i32.const 5)))
      (local.set $ip (i32.add (local.get $src) (i32.const 1)))
      (loop $outer
        ;; Search for a match, stepping further after every 64 misses.
        (local.set $fwd (local.get $ip))
        (local.set $step (i32.const 1))
        (local.set $tries (i32.const 64))
        (loop $search
          (local.set $ip (local.get $fwd))
          (local.set $fwd (i32.add (local.get $fwd) (local.get $step)))
          (local.set $step (i32.shr_u (local.get $tries) (i32.const 6)))
          (local.set $tries (i32.add (local.get $tries) (i32.const 1)))
          (br_if $last (i32.gt_u (local.get $ip) (local.get $mflimit)))
          (local.set $seq (i32.load (local.get $ip)))
          (local.set $h (i32.shl (i32.shr_u (i32.mul (local.get $seq) (i32.const -1640531535)) (i32.const 20)) (i32.const 2)))
          (local.set $ref (i32.add (local.get $src) (i32.load (local.get $h))))
          (i32.store (local.get $h) (i32.sub (local.get $ip) (local.get $src)))
          (br_if $search (i32.gt_u (i32.sub (local.get $ip) (local.get $ref)) (i32.const 65535)))
          (br_if $search (i32.ne (i32.load (local.get $ref)) (local.get $seq))))
        ;; Extend backwards over literals.
        (block $back
          (loop $b
            (br_if $back (i32.le_u (local.get $ip) (local.get $anchor)))
            (br_if $back (i32.le_u (local.get $ref) (local.get $src)))
            (br_if $back (i32.ne (i32.load8_u (i32.sub (local.get $ip) (i32.const 1))) (i32.load8_u (i32.sub (local.get $ref) (i32.const 1)))))
            (local.set $ip (i32.sub (local.get $ip) (i32.const 1)))
            (local.set $ref (i32.sub (local.get $ref) (i32.const 1)))
            (br $b)))
        ;; The probe: give up on a block that shrinks by less than 1/20 so far.
        (if (i32.ge_u (local.get $ip) (local.get $probeAt))
          (then
            (local.set $probeAt (i32.const -1))
            (if (i32.gt_u (i32.mul (i32.sub (local.get $op) (local.get $dst)) (i32.const 20))
                          (i32.mul (i32.sub (local.get $anchor) (local.get $src)) (i32.const 19)))
              (then (return (i32.const -1))))))
        ;; Literals.
        (local.set $lit (i32.sub (local.get $ip) (local.get $anchor)))
        ;; Room for the token, the length bytes, the literals and the offset, and for the two 8-byte words
        ;; below: 1 + 16 bytes when there are no literals.
        (if (i32.gt_u (i32.add (i32.add (local.get $op) (local.get $lit)) (i32.add (i32.div_u (local.get $lit) (i32.const 255)) (i32.const 17))) (local.get $oend))
          (then (return (i32.const -1))))
        (local.set $tok (local.get $op))
        (local.set $op (i32.add (local.get $op) (i32.const 1)))
        (if (i32.ge_u (local.get $lit) (i32.const 15))
          (then
            (i32.store8 (local.get $tok) (i32.const 240))
            (local.set $len (i32.sub (local.get $lit) (i32.const 15)))
            (block $d (loop $l
              (br_if $d (i32.lt_u (local.get $len) (i32.const 255)))
              (i32.store8 (local.get $op) (i32.const 255))
              (local.set $op (i32.add (local.get $op) (i32.const 1)))
              (local.set $len (i32.sub (local.get $len) (i32.const 255)))
              (br $l)))
            (i32.store8 (local.get $op) (local.get $len))
            (local.set $op (i32.add (local.get $op) (i32.const 1))))
          (else (i32.store8 (local.get $tok) (i32.shl (local.get $lit) (i32.const 4)))))
        ;; Up to 16 literals go as two 8-byte words rather than through memory.copy's call: the room check
        ;; above leaves the 16 bytes, and the bytes written past the literals are overwritten by what follows.
        (if (i32.le_u (local.get $lit) (i32.const 16))
          (then
            (i64.store (local.get $op) (i64.load (local.get $anchor)))
            (i64.store offset=8 (local.get $op) (i64.load offset=8 (local.get $anchor))))
          (else (memory.copy (local.get $op) (local.get $anchor) (local.get $lit))))
        (local.set $op (i32.add (local.get $op) (local.get $lit)))
        (loop $match
          ;; Offset, then the match length, 8 bytes at a time.
          (i32.store16 (local.get $op) (i32.sub (local.get $ip) (local.get $ref)))
          (local.set $op (i32.add (local.get $op) (i32.const 2)))
          (local.set $anchor (local.get $ip))
          (local.set $ip (i32.add (local.get $ip) (i32.const 4)))
          (local.set $ref (i32.add (local.get $ref) (i32.const 4)))
          (block $ext
            (block $words (loop $w
              (br_if $words (i32.gt_u (i32.add (local.get $ip) (i32.const 8)) (local.get $matchlimit)))
              (local.set $x (i64.xor (i64.load (local.get $ip)) (i64.load (local.get $ref))))
              (if (i64.ne (local.get $x) (i64.const 0))
                (then
                  (local.set $ip (i32.add (local.get $ip) (i32.wrap_i64 (i64.shr_u (i64.ctz (local.get $x)) (i64.const 3)))))
                  (br $ext)))
              (local.set $ip (i32.add (local.get $ip) (i32.const 8)))
              (local.set $ref (i32.add (local.get $ref) (i32.const 8)))
              (br $w)))
            (loop $bt
              (br_if $ext (i32.ge_u (local.get $ip) (local.get $matchlimit)))
              (br_if $ext (i32.ne (i32.load8_u (local.get $ip)) (i32.load8_u (local.get $ref))))
              (local.set $ip (i32.add (local.get $ip) (i32.const 1)))
              (local.set $ref (i32.add (local.get $ref) (i32.const 1)))
              (br $bt)))
          (local.set $len (i32.sub (i32.sub (local.get $ip) (local.get $anchor)) (i32.const 4)))
          (if (i32.gt_u (i32.add (local.get $op) (i32.add (i32.div_u (local.get $len) (i32.const 255)) (i32.const 16))) (local.get $oend))
            (then (return (i32.const -1))))
          (if (i32.ge_u (local.get $len) (i32.const 15))
            (then
              (i32.store8 (local.get $tok) (i32.or (i32.load8_u (local.get $tok)) (i32.const 15)))
              (local.set $len (i32.sub (local.get $len) (i32.const 15)))
              (block $d (loop $l
                (br_if $d (i32.lt_u (local.get $len) (i32.const 255)))
                (i32.store8 (local.get $op) (i32.const 255))
                (local.set $op (i32.add (local.get $op) (i32.const 1)))
                (local.set $len (i32.sub (local.get $len) (i32.const 255)))
                (br $l)))
              (i32.store8 (local.get $op) (local.get $len))
              (local.set $op (i32.add (local.get $op) (i32.const 1))))
            (else (i32.store8 (local.get $tok) (i32.or (i32.load8_u (local.get $tok)) (local.get $len)))))
          (local.set $anchor (local.get $ip))
          (br_if $last (i32.gt_u (local.get $ip) (local.get $mflimit)))
          ;; Remember ip - 2, then try a match at ip at once.
          (local.set $h (i32.sub (local.get $ip) (i32.const 2)))
          (i32.store
            (i32.shl (i32.shr_u (i32.mul (i32.load (local.get $h)) (i32.const -1640531535)) (i32.const 20)) (i32.const 2))
            (i32.sub (local.get $h) (local.get $src)))
          (local.set $seq (i32.load (local.get $ip)))
          (local.set $h (i32.shl (i32.shr_u (i32.mul (local.get $seq) (i32.const -1640531535)) (i32.const 20)) (i32.const 2)))
          (local.set $ref (i32.add (local.get $src) (i32.load (local.get $h))))
          (i32.store (local.get $h) (i32.sub (local.get $ip) (local.get $src)))
          (if (i32.and
                (i32.le_u (i32.sub (local.get $ip) (local.get $ref)) (i32.const 65535))
                (i32.eq (i32.load (local.get $ref)) (local.get $seq)))
            (then
              (if (i32.gt_u (i32.add (local.get $op) (i32.const 16)) (local.get $oend)) (then (return (i32.const -1))))
              (local.set $tok (local.get $op))
              (i32.store8 (local.get $tok) (i32.const 0))
              (local.set $op (i32.add (local.get $op) (i32.const 1)))
              (br $match))))
        (local.set $ip (i32.add (local.get $ip) (i32.const 1)))
        (br $outer)))
    ;; Last literals.
    (local.set $lit (i32.sub (local.get $end) (local.get $anchor)))
    (if (i32.gt_u (i32.add (i32.add (local.get $op) (i32.const 1)) (i32.add (local.get $lit) (i32.div_u (i32.add (local.get $lit) (i32.const 240)) (i32.const 255)))) (local.get $oend))
      (then (return (i32.const -1))))
    (if (i32.ge_u (local.get $lit) (i32.const 15))
      (then
        (i32.store8 (local.get $op) (i32.const 240))
        (local.set $op (i32.add (local.get $op) (i32.const 1)))
        (local.set $len (i32.sub (local.get $lit) (i32.const 15)))
        (block $d (loop $l
          (br_if $d (i32.lt_u (local.get $len) (i32.const 255)))
          (i32.store8 (local.get $op) (i32.const 255))
          (local.set $op (i32.add (local.get $op) (i32.const 1)))
          (local.set $len (i32.sub (local.get $len) (i32.const 255)))
          (br $l)))
        (i32.store8 (local.get $op) (local.get $len))
        (local.set $op (i32.add (local.get $op) (i32.const 1))))
      (else
        (i32.store8 (local.get $op) (i32.shl (local.get $lit) (i32.const 4)))
        (local.set $op (i32.add (local.get $op) (i32.const 1)))))
    (memory.copy (local.get $op) (local.get $anchor) (local.get $lit))
    (i32.sub (i32.add (local.get $op) (local.get $lit)) (local.get $dst)))
)
