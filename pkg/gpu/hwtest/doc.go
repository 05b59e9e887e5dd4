// Package hwtest runs the GPU layer against a real NVIDIA driver. Its tests skip unless
// OUTPOST_REAL_GPU=1, so `make test` passes on machines without a GPU; `make gpu-hwtest`
// builds the test binary to run on one.
package hwtest
