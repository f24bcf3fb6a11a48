#!/bin/sh
# The interface on a model that gives NaN predictions for 128 test images
# (tests/nan_checkpoint.sh), in tmux at 100x40 on the real data. The
# sparkline pane must tell the test accuracy of the loaded run's history
# from the model's, which has none. The occlusion legend of such an image
# must report that there is no prediction to explain, rather than follow
# class 0. Every class must keep
# its 1,000 test images as support, and Enter on a class without
# mistakes must count its images without a prediction. q must exit with
# status 1 and a summary without a test accuracy, as --eval and headless
# --epochs 0 do.
# Skipped (exit 77) without tmux or the data package.
set -u

tui_test=nan
. "$(dirname "$0")/tui_lib.sh"
. "$(dirname "$0")/nan_checkpoint.sh"

make_nan_checkpoint "$tmp/nan.ckpt" \
    || fail "training the dense10 model for the NaN checkpoint failed"

start nan 100x40 "${utf8:-C}" --load "$tmp/nan.ckpt" --epochs 0
wait_for nan 'gives NaN predictions for 128 of 10000' 60 \
    || fail "the status does not report the NaN predictions"

# The test accuracy curve is the saving run's, so its last point is not
# this model's accuracy, which the value column gives as "none".
wait_for nan ' test acc .* (epoch|ep) [0-9]+ [0-9]+\.[0-9]{2}%, now +none$' 5 \
    || fail "the test accuracy does not tell the loaded run's value from the model's"

# Image 37 has no prediction.
tm send-keys -t nan g 3 7 Enter
wait_for nan '^>Test 37/10000' 5 || fail "g 37 did not show image 37"
grep -q 'pred  no prediction (NaN)' "$tmp/screen" \
    || fail "image 37 has a prediction"
tm send-keys -t nan o
wait_for nan 'no prediction to explain' 20 \
    || fail "the overlay of an image without a prediction does not say so"
grep -q 'masking' "$tmp/screen" \
    && fail "the overlay explains a class of an image without a prediction"

# The per-class table counts every test image of a class in its support.
tm send-keys -t nan 3
wait_for nan 'Per-class metrics' 5 || fail "3 did not show the per-class table"
for class in 'T-shirt/top' Trouser Pullover Dress Coat Sandal Shirt \
    Sneaker Bag 'Ankle boot'; do
    grep -Eq "[ !]$class +[0-9.]+ +[0-9.]+ +[0-9.]+ +1000( |$)" \
        "$tmp/screen" || fail "the support of $class is not 1000"
done

# T-shirt/top, under the cursor, has no mistakes, but a recall below
# 100% because some of its images have no prediction, which Enter reports.
tm send-keys -t nan Enter
wait_for nan 'no misclassified test images of T-shirt/top, but [0-9]+ ha(s|ve) no prediction \(NaN\)' 5 \
    || fail "Enter on T-shirt/top does not count its images without a prediction"

tm send-keys -t nan q
wait_exit nan 20 1
capture_exited nan
grep -q 'test accuracy [0-9]' "$tmp/screen" \
    && fail "the summary gives a test accuracy"
grep -q '^fmnist: no test accuracy: 128 test images have no prediction$' \
    "$tmp/screen" || fail "the summary does not say why it has no accuracy"
exit 0
