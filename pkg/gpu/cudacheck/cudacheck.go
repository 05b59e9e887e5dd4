// Package cudacheck runs a small check on one GPU or MIG device through the CUDA driver API,
// with libcuda from the driver (no CUDA toolkit): init, a context, memory allocated and copied
// in, a tiny kernel loaded from PTX and run over it, the result copied back and compared. It is
// linked only into the GPU helper, which runs it in a child process per device (CUDA picks the
// device from CUDA_VISIBLE_DEVICES, read once per process).
package cudacheck

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef unsigned long long CUdeviceptr;

typedef struct {
	int step;          // the step that failed, 0 when all passed
	int code;          // its CUresult
	char name[64];     // cuGetErrorName's text for code
	int wrong;         // elements the kernel got wrong
} check_result;

// Steps, in order: the Go side names them.
enum { S_OPEN = 1, S_SYMBOL, S_INIT, S_DEVICE, S_CONTEXT, S_ALLOC, S_COPY_IN, S_MODULE, S_FUNCTION, S_LAUNCH, S_SYNC, S_COPY_OUT, S_COMPARE };

static void fail(check_result *r, void *lib, int step, int code) {
	r->step = step;
	r->code = code;
	CUresult (*errname)(CUresult, const char **) = lib ? dlsym(lib, "cuGetErrorName") : NULL;
	const char *s = NULL;
	if (errname && code != 0 && errname(code, &s) == 0 && s) {
		strncpy(r->name, s, sizeof(r->name) - 1);
	}
}

static void run_check(const char *libpath, const char *ptx, int n, check_result *r) {
	memset(r, 0, sizeof(*r));
	void *lib = dlopen(libpath, RTLD_NOW | RTLD_LOCAL);
	if (!lib) { r->step = S_OPEN; strncpy(r->name, dlerror(), sizeof(r->name) - 1); return; }
	// libcuda stays loaded: the process ends after the check, and unloading it is fragile.
	CUresult (*cuInit)(unsigned) = dlsym(lib, "cuInit");
	CUresult (*cuDeviceGet)(CUdevice *, int) = dlsym(lib, "cuDeviceGet");
	CUresult (*cuCtxCreate)(CUcontext *, unsigned, CUdevice) = dlsym(lib, "cuCtxCreate_v2");
	CUresult (*cuCtxDestroy)(CUcontext) = dlsym(lib, "cuCtxDestroy_v2");
	CUresult (*cuMemAlloc)(CUdeviceptr *, size_t) = dlsym(lib, "cuMemAlloc_v2");
	CUresult (*cuMemFree)(CUdeviceptr) = dlsym(lib, "cuMemFree_v2");
	CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t) = dlsym(lib, "cuMemcpyHtoD_v2");
	CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t) = dlsym(lib, "cuMemcpyDtoH_v2");
	CUresult (*cuModuleLoadData)(CUmodule *, const void *) = dlsym(lib, "cuModuleLoadData");
	CUresult (*cuModuleUnload)(CUmodule) = dlsym(lib, "cuModuleUnload");
	CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *) = dlsym(lib, "cuModuleGetFunction");
	CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **, void **) = dlsym(lib, "cuLaunchKernel");
	CUresult (*cuCtxSynchronize)(void) = dlsym(lib, "cuCtxSynchronize");
	const char *names[] = { "cuInit", "cuDeviceGet", "cuCtxCreate_v2", "cuCtxDestroy_v2", "cuMemAlloc_v2", "cuMemFree_v2",
		"cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuModuleLoadData", "cuModuleUnload", "cuModuleGetFunction", "cuLaunchKernel", "cuCtxSynchronize" };
	void *syms[] = { cuInit, cuDeviceGet, cuCtxCreate, cuCtxDestroy, cuMemAlloc, cuMemFree, cuMemcpyHtoD, cuMemcpyDtoH,
		cuModuleLoadData, cuModuleUnload, cuModuleGetFunction, cuLaunchKernel, cuCtxSynchronize };
	for (unsigned i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if (!syms[i]) { r->step = S_SYMBOL; strncpy(r->name, names[i], sizeof(r->name) - 1); return; }
	}
	CUresult e;
	CUdevice dev;
	CUcontext ctx = NULL;
	CUmodule mod = NULL;
	CUfunction fn;
	CUdeviceptr buf = 0;
	unsigned int *host = malloc(sizeof(unsigned int) * n);
	if (!host) { r->step = S_ALLOC; strncpy(r->name, "host memory", sizeof(r->name) - 1); return; }
	for (int i = 0; i < n; i++) host[i] = (unsigned int) i;
	if ((e = cuInit(0))) { fail(r, lib, S_INIT, e); goto out; }
	if ((e = cuDeviceGet(&dev, 0))) { fail(r, lib, S_DEVICE, e); goto out; }
	if ((e = cuCtxCreate(&ctx, 0, dev))) { ctx = NULL; fail(r, lib, S_CONTEXT, e); goto out; }
	if ((e = cuMemAlloc(&buf, sizeof(unsigned int) * n))) { buf = 0; fail(r, lib, S_ALLOC, e); goto out; }
	if ((e = cuMemcpyHtoD(buf, host, sizeof(unsigned int) * n))) { fail(r, lib, S_COPY_IN, e); goto out; }
	if ((e = cuModuleLoadData(&mod, ptx))) { mod = NULL; fail(r, lib, S_MODULE, e); goto out; }
	if ((e = cuModuleGetFunction(&fn, mod, "add_one"))) { fail(r, lib, S_FUNCTION, e); goto out; }
	unsigned int count = (unsigned int) n;
	void *args[] = { &buf, &count };
	if ((e = cuLaunchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL))) { fail(r, lib, S_LAUNCH, e); goto out; }
	if ((e = cuCtxSynchronize())) { fail(r, lib, S_SYNC, e); goto out; }
	memset(host, 0, sizeof(unsigned int) * n);
	if ((e = cuMemcpyDtoH(host, buf, sizeof(unsigned int) * n))) { fail(r, lib, S_COPY_OUT, e); goto out; }
	for (int i = 0; i < n; i++) if (host[i] != (unsigned int) i + 1) r->wrong++;
	if (r->wrong) r->step = S_COMPARE;
out:
	if (buf) cuMemFree(buf);
	if (mod) cuModuleUnload(mod);
	if (ctx) cuCtxDestroy(ctx);
	free(host);
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// LibraryName is the CUDA driver library, as the driver installs it.
const LibraryName = "libcuda.so.1"

// Elements is how many numbers the kernel adds one to: 1 MiB of device memory.
const Elements = 1 << 18

// ptx is the kernel: data[i] += 1 for i < n. PTX ISA 6.0 for sm_50, which every driver since
// CUDA 9 compiles for its GPU at load time, so the check runs on any GPU from Maxwell to now.
const ptx = `.version 6.0
.target sm_50
.address_size 64

.visible .entry add_one(
	.param .u64 data,
	.param .u32 n
)
{
	.reg .pred p;
	.reg .b32 r<7>;
	.reg .b64 rd<5>;
	ld.param.u64 rd1, [data];
	ld.param.u32 r1, [n];
	mov.u32 r2, %ctaid.x;
	mov.u32 r3, %ntid.x;
	mov.u32 r4, %tid.x;
	mad.lo.s32 r5, r2, r3, r4;
	setp.ge.u32 p, r5, r1;
	@p bra DONE;
	cvta.to.global.u64 rd2, rd1;
	mul.wide.u32 rd3, r5, 4;
	add.s64 rd4, rd2, rd3;
	ld.global.u32 r6, [rd4];
	add.s32 r6, r6, 1;
	st.global.u32 [rd4], r6;
DONE:
	ret;
}
`

// stepName names the C side's step i.
func stepName(i int) string {
	steps := []string{"", "load " + LibraryName, "find the CUDA driver API in it", "cuInit", "cuDeviceGet",
		"create a context", "allocate device memory", "copy to the device", "load the PTX module", "find the kernel",
		"launch the kernel", "run the kernel", "copy from the device", "check the kernel's result"}
	if i > 0 && i < len(steps) {
		return steps[i]
	}
	return fmt.Sprintf("step %d", i)
}

// Result is one device's check.
type Result struct {
	OK     bool          `json:"ok"`
	Reason string        `json:"reason,omitempty"` // the step that failed and why, or why it counts as busy
	Took   time.Duration `json:"took"`
}

// busy reports whether a failure means the device is in use, not broken: pods that outlived an
// agent restart hold it in exclusive-process mode, or fill its memory so a context does not fit.
func busy(step int, name string) bool {
	return (step == int(C.S_CONTEXT) || step == int(C.S_ALLOC)) &&
		(name == "CUDA_ERROR_DEVICES_UNAVAILABLE" || name == "CUDA_ERROR_OUT_OF_MEMORY")
}

// Run checks the one device CUDA sees (the caller sets CUDA_VISIBLE_DEVICES) with libcuda at
// libPath.
func Run(libPath string) Result {
	cpath, cptx := C.CString(libPath), C.CString(ptx)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cptx))
	var r C.check_result
	start := time.Now()
	C.run_check(cpath, cptx, C.int(Elements), &r)
	took := time.Since(start)
	step := int(r.step)
	if step == 0 {
		return Result{OK: true, Took: took}
	}
	what := stepName(step)
	if step == int(C.S_SYMBOL) {
		return Result{Reason: what + ": " + C.GoString(&r.name[0]) + " is missing", Took: took}
	}
	why := C.GoString(&r.name[0])
	if busy(step, why) {
		return Result{OK: true, Reason: "busy, not checked: " + what + ": " + why, Took: took}
	}
	switch {
	case step == int(C.S_COMPARE):
		why = fmt.Sprintf("%d of %d numbers wrong", int(r.wrong), Elements)
	case why == "" && r.code != 0:
		why = fmt.Sprintf("CUDA error %d", int(r.code))
	}
	if why == "" {
		return Result{Reason: what + " failed", Took: took}
	}
	return Result{Reason: what + ": " + why, Took: took}
}
