// Package fakedriver lays out what an NVIDIA driver install looks like on disk, for the tests of
// the CDI spec: the driver's libraries (real ELF shared objects with their sonames, so ldconfig
// caches them), their .so.1 links, the graphics ICD files, GSP firmware, the persistenced
// socket and the binaries, under a root. Nothing in it is a GPU: NVML comes from a mock.
package fakedriver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// LibDir is where the fake install puts its libraries, as Debian's packages do.
const LibDir = "/usr/lib/x86_64-linux-gnu"

// Class is a kind of file a container of some NVIDIA_DRIVER_CAPABILITIES needs.
type Class string

const (
	Compute  Class = "compute"
	Utility  Class = "utility"
	Video    Class = "video"
	Graphics Class = "graphics"
	IPC      Class = "ipc"
	Firmware Class = "firmware"
)

// Libraries are the versioned libraries by class: a subset of what the 550 driver installs.
func Libraries() map[Class][]string {
	return map[Class][]string{
		Compute: {"libcuda.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so", "libnvidia-opencl.so",
			"libnvidia-gpucomp.so", "libnvidia-allocator.so", "libcudadebugger.so"},
		Utility:  {"libnvidia-ml.so", "libnvidia-cfg.so"},
		Video:    {"libnvcuvid.so", "libnvidia-encode.so", "libnvidia-opticalflow.so"},
		Graphics: {"libEGL_nvidia.so", "libGLX_nvidia.so", "libGLESv2_nvidia.so", "libnvidia-glcore.so", "libnvidia-eglcore.so", "libnvidia-glsi.so"},
	}
}

// Files are the other files by class, relative to the root.
func Files(version string) map[Class][]string {
	return map[Class][]string{
		Graphics: {"/usr/share/glvnd/egl_vendor.d/10_nvidia.json", "/etc/vulkan/icd.d/nvidia_icd.json", "/etc/OpenCL/vendors/nvidia.icd"},
		Firmware: {"/lib/firmware/nvidia/" + version + "/gsp_ga10x.bin"},
		IPC:      {"/var/run/nvidia-persistenced/socket"},
		Utility:  {"/usr/bin/nvidia-smi", "/usr/bin/nvidia-cuda-mps-control", "/usr/bin/nvidia-cuda-mps-server"},
	}
}

// Make lays the install out under root: each library as root/LibDir/<name>.<version>, an ELF
// shared object whose soname is <name>.1 (built with gcc), with the .so.1 link the installer
// makes. It returns the unix socket's listener, which the caller closes.
func Make(root, version string) (net.Listener, error) {
	lib := filepath.Join(root, LibDir)
	if err := os.MkdirAll(lib, 0o755); err != nil {
		return nil, err
	}
	for _, names := range Libraries() {
		for _, name := range names {
			file := filepath.Join(lib, name+"."+version)
			out, err := exec.Command("gcc", "-shared", "-nostdlib", "-x", "c", "/dev/null", "-Wl,-soname,"+name+".1", "-o", file).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("gcc %s: %w: %s", name, err, strings.TrimSpace(string(out)))
			}
			if err := os.Symlink(name+"."+version, filepath.Join(lib, name+".1")); err != nil {
				return nil, err
			}
		}
	}
	var sock net.Listener
	for class, files := range Files(version) {
		for _, f := range files {
			p := filepath.Join(root, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if class == IPC {
				l, err := net.Listen("unix", p)
				if err != nil {
					return nil, err
				}
				sock = l
				continue
			}
			if err := os.WriteFile(p, []byte("fake "+filepath.Base(f)+"\n"), 0o755); err != nil {
				return nil, err
			}
		}
	}
	return sock, nil
}
