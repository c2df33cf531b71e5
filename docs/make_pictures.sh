#!/usr/bin/env bash
# Remake the README's pictures (docs/*.png) with the bprop command itself, as a user would.
#
#   docs/make_pictures.sh            (from anywhere; bprop and matplotlib installed)
#
# MNIST's four files are read from $BPROP_MNIST (default: ../shared/data/mnist beside the
# repository). Every run is seeded, BLAS uses one thread (a different thread count may add
# numbers in another order) and matplotlib draws with Agg and writes no version stamp, so a
# rerun with the same versions of NumPy and matplotlib writes the same files, byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
mnist=${BPROP_MNIST:-../shared/data/mnist}
if ! python -c "import matplotlib" 2> /dev/null; then
    echo 'make_pictures.sh: the pictures need matplotlib: pip install "bprop[plot]"' >&2
    exit 2
fi
if [ ! -e "$mnist/train-images-idx3-ubyte.gz" ] && [ ! -e "$mnist/train-images-idx3-ubyte" ]
then
    echo "make_pictures.sh: no MNIST files in $mnist (set BPROP_MNIST to their folder)" >&2
    exit 2
fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { echo "  $1" >&2; }
step "demo planar, demo activations"
bprop demo planar --out "$work/demos" > /dev/null
bprop demo activations --out "$work/demos" > /dev/null
step "train --dataset spirals (curves, decision regions)"
bprop train --dataset spirals --layers 2,64,64,3 --lr 0.01 --epochs 60 --batch-norm \
    --schedule cosine --seed 0 --quiet --out "$work/spirals" > /dev/null
step "train --dataset quadratic (fit)"
bprop train --dataset quadratic --layers 1,32,32,32,1 --lr 0.01 --epochs 200 --batch-size 16 \
    --seed 0 --quiet --out "$work/quadratic" > /dev/null
step "train --dataset mnist (confusion matrix, first layer)"
bprop train --dataset mnist --data-dir "$mnist" --layers 784,128,10 --epochs 5 \
    --batch-size 128 --seed 0 --quiet --out "$work/mnist" > /dev/null

cp "$work/demos/planar.png" "$work/demos/activations.png" docs/
cp "$work/spirals/curves.png" docs/spirals_curves.png
cp "$work/spirals/decision_boundary.png" docs/spirals_decision_boundary.png
cp "$work/quadratic/fit.png" docs/quadratic_fit.png
cp "$work/mnist/confusion_matrix.png" docs/mnist_confusion_matrix.png
cp "$work/mnist/first_layer.png" docs/mnist_first_layer.png
echo "pictures written to docs/: planar.png activations.png spirals_curves.png" \
    "spirals_decision_boundary.png quadratic_fit.png mnist_confusion_matrix.png" \
    "mnist_first_layer.png"
