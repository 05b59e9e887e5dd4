package cudacheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCUDA is a libcuda in C over host memory: the driver API calls the check makes, with
// "the kernel" adding one to each number as the PTX does. FAIL_AT names a call to fail with
// error 999 (CUDA_ERROR_UNKNOWN); BAD_KERNEL makes the kernel add two.
const fakeCUDA = `
#include <stdlib.h>
#include <string.h>
typedef unsigned long long ptr;
static int fails(const char *f) { const char *e = getenv("FAIL_AT"); return e && strcmp(e, f) == 0; }
int cuGetErrorName(int e, const char **s) { *s = e == 999 ? "CUDA_ERROR_UNKNOWN" : e == 46 ? "CUDA_ERROR_DEVICES_UNAVAILABLE" : "OTHER"; return 0; }
int cuInit(unsigned f) { return fails("cuInit") ? 999 : 0; }
int cuDeviceGet(int *d, int i) { *d = 0; return fails("cuDeviceGet") ? 999 : 0; }
int cuCtxCreate_v2(void **c, unsigned f, int d) { *c = (void *) 1; return fails("cuCtxCreate") ? 999 : getenv("EXCLUSIVE") ? 46 : 0; }
int cuCtxDestroy_v2(void *c) { return 0; }
int cuMemAlloc_v2(ptr *p, size_t n) { if (fails("cuMemAlloc")) return 2; *p = (ptr) malloc(n); return 0; }
int cuMemFree_v2(ptr p) { free((void *) p); return 0; }
int cuMemcpyHtoD_v2(ptr d, const void *s, size_t n) { memcpy((void *) d, s, n); return 0; }
int cuMemcpyDtoH_v2(void *d, ptr s, size_t n) { memcpy(d, (void *) s, n); return 0; }
int cuModuleLoadData(void **m, const void *ptx) { *m = (void *) 1; return strstr(ptx, ".entry add_one") ? 0 : 218; }
int cuModuleUnload(void *m) { return 0; }
int cuModuleGetFunction(void **f, void *m, const char *name) { *f = (void *) 1; return strcmp(name, "add_one") ? 500 : 0; }
static unsigned *data; static unsigned count;
int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sh, void *st, void **args, void **extra) {
	if (fails("cuLaunchKernel")) return 999;
	data = *(unsigned **) args[0]; count = *(unsigned *) args[1];
	if ((unsigned long) gx * bx < count) return 1;
	for (unsigned i = 0; i < count; i++) data[i] += getenv("BAD_KERNEL") ? 2 : 1;
	return 0;
}
int cuCtxSynchronize(void) { return fails("cuCtxSynchronize") ? 999 : 0; }
`

func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, lib := filepath.Join(dir, "cuda.c"), filepath.Join(dir, "libcuda.so.1")
	os.WriteFile(src, []byte(fakeCUDA), 0o644)
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Skipf("no C compiler for the fake libcuda: %v %s", err, out)
	}
	return lib
}

// The check passes on a library that runs the kernel right, and names the step and the error
// where one fails.
func TestCheck(t *testing.T) {
	lib := build(t)
	if r := Run(lib); !r.OK || r.Reason != "" || r.Took <= 0 {
		t.Fatalf("a good device: %+v", r)
	}
	for at, want := range map[string]string{
		"cuInit": "cuInit: CUDA_ERROR_UNKNOWN", "cuCtxCreate": "create a context: CUDA_ERROR_UNKNOWN",
		"cuMemAlloc": "allocate device memory: OTHER", "cuLaunchKernel": "launch the kernel: CUDA_ERROR_UNKNOWN",
		"cuCtxSynchronize": "run the kernel: CUDA_ERROR_UNKNOWN",
	} {
		t.Setenv("FAIL_AT", at)
		if r := Run(lib); r.OK || r.Reason != want {
			t.Errorf("failing %s: %+v, want %q", at, r, want)
		}
	}
	t.Setenv("FAIL_AT", "")
	// Held by a pod in exclusive-process mode: busy, not broken.
	t.Setenv("EXCLUSIVE", "1")
	if r := Run(lib); !r.OK || r.Reason != "busy, not checked: create a context: CUDA_ERROR_DEVICES_UNAVAILABLE" {
		t.Errorf("a busy device: %+v", r)
	}
	os.Unsetenv("EXCLUSIVE")
	t.Setenv("BAD_KERNEL", "1")
	if r := Run(lib); r.OK || !strings.Contains(r.Reason, "check the kernel's result: 262144 of 262144 numbers wrong") {
		t.Errorf("a kernel that computes wrong: %+v", r)
	}
}

// No driver library: the first step fails, saying so.
func TestNoLibrary(t *testing.T) {
	r := Run(filepath.Join(t.TempDir(), "libcuda.so.1"))
	if r.OK || !strings.HasPrefix(r.Reason, "load libcuda.so.1: ") {
		t.Errorf("%+v", r)
	}
}
