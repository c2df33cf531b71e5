#!/usr/bin/env bash
# Remake the README's pictures with the bprop command itself (run from the repository root,
# with bprop and matplotlib installed, and the MNIST files in ../shared/data/mnist).
set -euo pipefail
work=$(mktemp -d)
bprop demo all --out "$work/demos" > /dev/null
bprop demo activations --out "$work/demos" > /dev/null
bprop train --dataset spirals --layers 2,64,64,3 --lr 0.01 --epochs 60 --batch-norm \
    --schedule cosine --quiet --out "$work/spirals" > /dev/null
bprop train --dataset quadratic --layers 1,32,32,32,1 --lr 0.01 --epochs 200 --batch-size 16 \
    --quiet --out "$work/quadratic" > /dev/null
bprop train --dataset mnist --data-dir ../shared/data/mnist --layers 784,128,10 --epochs 5 \
    --batch-size 128 --quiet --out "$work/mnist" > /dev/null
cp "$work/demos/planar.png" "$work/demos/activations.png" docs/
cp "$work/spirals/curves.png" docs/spirals_curves.png
cp "$work/spirals/decision_boundary.png" docs/spirals_decision_boundary.png
cp "$work/quadratic/fit.png" docs/quadratic_fit.png
cp "$work/mnist/confusion_matrix.png" docs/mnist_confusion_matrix.png
cp "$work/mnist/first_layer.png" docs/mnist_first_layer.png
echo "pictures written to docs/"
