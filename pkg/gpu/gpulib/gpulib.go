// Package gpulib is the node's view of NVML as plain data, whoever holds the library: the GPU
// helper process (cmd/outpost-gpu, the one part of Outpost linked against go-nvml, so that the
// outpost binary itself stays static) or the in-process mock. Everything above it (labels,
// device plugins, CDI, health, metrics, check-config) sees only this interface.
package gpulib

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

// ErrNoEvents means the driver cannot deliver XID/ECC events: health is then not watched.
var ErrNoEvents = errors.New("GPU health events unavailable")

// ErrGone means the process holding the library died: live calls cannot succeed again.
var ErrGone = errors.New("the GPU helper is gone")

// Lib is what the GPU layer asks of NVML.
type Lib interface {
	// Detect reads the node's GPUs, with NVML up only for the call; detect.ErrNoDriver without a driver.
	Detect() (*detect.Node, error)
	// Preflight reads what check-config reports, with NVML up only for the call.
	Preflight() (*Preflight, error)
	// Open keeps NVML up until Close, for Readings, Probe and NextEvent.
	Open() error
	Close() error
	// Readings are the live values of every GPU.
	Readings() ([]Reading, error)
	// Probe reports whether the GPU answers.
	Probe(uuid string) bool
	// NextEvent waits up to timeout for an XID or double-bit ECC event; ok is false on timeout.
	// ErrNoEvents (wrapped) when the driver cannot deliver events at all.
	NextEvent(timeout time.Duration) (e health.Event, ok bool, err error)
	// ApplyMIG makes one GPU's MIG mode and instances what the plan says, with NVML up only
	// for the call.
	ApplyMIG(p mig.GPUPlan) (mig.Result, error)
	// CDISpec generates the node's CDI spec, with NVML up only for the call.
	CDISpec(o CDIOptions) (*CDISpec, error)
	// Validate runs a small kernel on each device named (a GPU's UUID, or a MIG device's ID)
	// through the CUDA driver API, one process per device.
	Validate(ids []string) ([]Validation, error)
}

// Validation is one device's check before use.
type Validation struct {
	ID     string  `json:"id"` // the GPU's UUID, or the MIG device's ID (MIG-<GPU UUID>/<GI>/<CI>)
	OK     bool    `json:"ok"`
	Reason string  `json:"reason,omitempty"` // the step that failed, and CUDA's error
	Millis float64 `json:"millis"`           // how long the check took
}

// GPUOf is the UUID of the GPU a device ID belongs to: the ID itself for a GPU, the UUID inside
// a MIG device's ID.
func GPUOf(id string) string {
	if rest, ok := strings.CutPrefix(id, "MIG-"); ok {
		if gpu, _, ok := strings.Cut(rest, "/"); ok {
			return gpu
		}
	}
	return id
}

// CDIOptions are where the driver's files are and what runs the spec's hooks.
type CDIOptions struct {
	DriverRoot string `json:"driverRoot"` // the driver's libraries and binaries: / on most hosts
	DevRoot    string `json:"devRoot"`    // where /dev is
	// HookPath runs the spec's hooks as nvidia-cdi-hook: the GPU helper, which answers them.
	HookPath string `json:"hookPath"`
	// NoSandboxUtils leaves out the driver's libnvidia-sandboxutils (the mock has none).
	NoSandboxUtils bool `json:"noSandboxUtils,omitempty"`
}

// CDISpec is a generated spec and what the generator warned about on the way.
type CDISpec struct {
	YAML     []byte   `json:"yaml"`
	Warnings []string `json:"warnings,omitempty"`
}

// Reading is one GPU's live values; a value NVML cannot read is nil, never faked.
type Reading struct {
	Index       int      `json:"index"`
	UUID        string   `json:"uuid"`
	Name        string   `json:"name"`
	Minor       int      `json:"minor"`
	UtilPercent *float64 `json:"utilPercent,omitempty"`
	FBUsedMiB   *float64 `json:"fbUsedMiB,omitempty"`
	FBFreeMiB   *float64 `json:"fbFreeMiB,omitempty"`
	FBTotalMiB  *float64 `json:"fbTotalMiB,omitempty"`
	TempC       *float64 `json:"tempC,omitempty"`
	PowerW      *float64 `json:"powerW,omitempty"`
	SMClockMHz  *float64 `json:"smClockMHz,omitempty"`
	MemClockMHz *float64 `json:"memClockMHz,omitempty"`
	// EnergyMJ is the energy used since the driver loaded, in millijoules.
	EnergyMJ    *float64 `json:"energyMJ,omitempty"`
	PCIeReplays *float64 `json:"pcieReplays,omitempty"`
	// ECC errors since the driver loaded (volatile): single-bit corrected, double-bit not.
	ECCSingleBit *float64 `json:"eccSingleBit,omitempty"`
	ECCDoubleBit *float64 `json:"eccDoubleBit,omitempty"`
	// MemCopyUtilPercent is the share of time the memory was read or written; Enc and Dec the
	// video encoder's and decoder's.
	MemCopyUtilPercent *float64 `json:"memCopyUtilPercent,omitempty"`
	EncUtilPercent     *float64 `json:"encUtilPercent,omitempty"`
	DecUtilPercent     *float64 `json:"decUtilPercent,omitempty"`
	MemTempC           *float64 `json:"memTempC,omitempty"`
	PowerLimitW        *float64 `json:"powerLimitW,omitempty"`
	// PCIe throughput over the driver's last 20 ms window, in bytes per second.
	PCIeTxBytesPerSec *float64 `json:"pcieTxBytesPerSec,omitempty"`
	PCIeRxBytesPerSec *float64 `json:"pcieRxBytesPerSec,omitempty"`
	// NVLinkBytes is the data sent and received over every NVLink since the driver loaded.
	NVLinkBytes *float64 `json:"nvlinkBytes,omitempty"`
	// ClocksEventReasons is NVML's bitmask of why the clocks are held down (throttling).
	ClocksEventReasons *float64 `json:"clocksEventReasons,omitempty"`
	// ECC errors over the GPU's life (aggregate), and its row remapping (A100 and later).
	ECCSingleBitAgg       *float64 `json:"eccSingleBitAgg,omitempty"`
	ECCDoubleBitAgg       *float64 `json:"eccDoubleBitAgg,omitempty"`
	RemappedCorrectable   *float64 `json:"remappedCorrectable,omitempty"`
	RemappedUncorrectable *float64 `json:"remappedUncorrectable,omitempty"`
	RowRemapFailure       *float64 `json:"rowRemapFailure,omitempty"`
	// Activity ratios (0 to 1) from GPU performance monitoring, between this reading and the
	// last (Hopper and later; nil elsewhere and on the first reading).
	TensorActive   *float64 `json:"tensorActive,omitempty"`
	SMActive       *float64 `json:"smActive,omitempty"`
	SMOccupancy    *float64 `json:"smOccupancy,omitempty"`
	DRAMActive     *float64 `json:"dramActive,omitempty"`
	GraphicsActive *float64 `json:"graphicsActive,omitempty"`
	// MIG are the GPU's MIG devices' own values, while MIG is on.
	MIG []MIGReading `json:"mig,omitempty"`
}

// MIGReading is one MIG device's values: NVML has its memory, not its utilization.
type MIGReading struct {
	// ID is the device as the device plugin advertises it: MIG-<GPU UUID>/<GI>/<CI>.
	ID                string   `json:"id"`
	Profile           string   `json:"profile"`
	GPUInstanceID     int      `json:"gpuInstanceID"`
	ComputeInstanceID int      `json:"computeInstanceID"`
	FBUsedMiB         *float64 `json:"fbUsedMiB,omitempty"`
	FBFreeMiB         *float64 `json:"fbFreeMiB,omitempty"`
	FBTotalMiB        *float64 `json:"fbTotalMiB,omitempty"`
}

// Preflight is the driver's state as check-config judges it.
type Preflight struct {
	DriverVersion string         `json:"driverVersion"`
	GPUs          []PreflightGPU `json:"gpus"`
}

// PreflightGPU is one GPU's settings; nil where NVML cannot tell.
type PreflightGPU struct {
	Index       int   `json:"index"`
	Persistence *bool `json:"persistence,omitempty"`
	MIGEnabled  *bool `json:"migEnabled,omitempty"`
	MIGPending  bool  `json:"migPending,omitempty"` // a mode change waits for a reset
}

// Float is a pointer to v, for Reading's optional values.
func Float(v float64) *float64 { return &v }

// Bool is a pointer to v.
func Bool(v bool) *bool { return &v }

// LibraryName is NVML's shared library, as the driver installs it.
const LibraryName = "libnvidia-ml.so.1"

// FindLibrary returns the path of libnvidia-ml under root, or "" when there is none: the GPU
// helper is started only where the library exists. It looks in LD_LIBRARY_PATH (under / only),
// where distributions, NVIDIA's installer and NixOS put the driver's libraries, then in the
// dirs the root's ld.so.conf.d names.
func FindLibrary(root string) string {
	if root == "" {
		root = "/"
	}
	dirs := []string{
		"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
		"/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64", "/lib",
		"/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/run/opengl-driver/lib",
	}
	if root == "/" {
		dirs = append(filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")), dirs...)
	}
	confs, _ := filepath.Glob(filepath.Join(root, "etc/ld.so.conf.d/*.conf"))
	for _, c := range confs {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "/") {
				dirs = append(dirs, line)
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(root, d, LibraryName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// NoDriver is the Lib of a node without libnvidia-ml: every call says so.
type NoDriver struct{}

var _ Lib = NoDriver{}

func (NoDriver) Detect() (*detect.Node, error)  { return nil, detect.ErrNoDriver }
func (NoDriver) Preflight() (*Preflight, error) { return nil, detect.ErrNoDriver }
func (NoDriver) Open() error                    { return detect.ErrNoDriver }
func (NoDriver) Close() error                   { return nil }
func (NoDriver) Readings() ([]Reading, error)   { return nil, detect.ErrNoDriver }
func (NoDriver) Probe(string) bool              { return false }
func (NoDriver) NextEvent(time.Duration) (health.Event, bool, error) {
	return health.Event{}, false, detect.ErrNoDriver
}
func (NoDriver) ApplyMIG(mig.GPUPlan) (mig.Result, error) { return mig.Result{}, detect.ErrNoDriver }
func (NoDriver) CDISpec(CDIOptions) (*CDISpec, error)     { return nil, detect.ErrNoDriver }
func (NoDriver) Validate([]string) ([]Validation, error)  { return nil, detect.ErrNoDriver }
