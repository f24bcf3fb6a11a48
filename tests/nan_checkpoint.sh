# Sourced by tests/e2e_headless.sh and tests/tui_nan.sh, which set fmnist
# and data first. make_nan_checkpoint FILE writes to FILE a dense10
# checkpoint whose unit 0 has weight 3e38 on the centre pixel (row 14,
# column 14), weight -3e38 on the top-left pixel and bias 5e37. The load
# probe's black, white and noise images keep its logit finite, but a test
# image with a white centre and a black corner pushes it past the largest
# float, so its probabilities are NaN. That happens on 128 of the 10,000
# test images, images 24 and 37 among them. Weights follow the header (44 bytes) and the
# spec, whose length is the u32 at offset 12 (host order, so
# little-endian hosts only), and the biases follow the 784 x 10 weights.
# The file ends with gzip's CRC-32 of the bytes before it. Returns
# nonzero when the training run that writes the base model fails.
make_nan_checkpoint() {
    "$fmnist" --data "$data" --headless --epochs 1 --train-limit 2000 \
        --model dense10 --save "$1" >/dev/null 2>&1 || return 1
    nan_spec_len=$(od -An -tu4 -j12 -N4 "$1" | tr -d ' ')
    put_nan_float "$1" $((14 * 28 + 14)) '\346\261\141\177'
    put_nan_float "$1" 0 '\346\261\141\377'
    put_nan_float "$1" 7840 '\231\166\026\176'
    nan_size=$(wc -c <"$1")
    head -c $((nan_size - 4)) "$1" | gzip -c | tail -c 8 | head -c 4 \
        | dd of="$1" bs=1 seek=$((nan_size - 4)) conv=notrunc 2>/dev/null
}

# Writes the 4 bytes $3 (printf escapes) over parameter $2 of file $1.
put_nan_float() {
    printf "$3" | dd of="$1" bs=1 seek=$((44 + nan_spec_len + 4 * $2)) \
        conv=notrunc 2>/dev/null
}
