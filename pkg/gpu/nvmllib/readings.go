package nvmllib

import (
	"encoding/binary"
	"math"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// more reads the values dcgm-exporter serves beyond the basic ones: encoder and decoder
// utilization, memory temperature, power limit, PCIe and NVLink traffic, clock event reasons,
// lifetime ECC counts and row remapping. Each is left nil where the GPU or driver has none.
func more(dev nvml.Device, g *gpulib.Reading) {
	if u, _, r := dev.GetEncoderUtilization(); r == nvml.SUCCESS {
		g.EncUtilPercent = gpulib.Float(float64(u))
	}
	if u, _, r := dev.GetDecoderUtilization(); r == nvml.SUCCESS {
		g.DecUtilPercent = gpulib.Float(float64(u))
	}
	if p, r := dev.GetEnforcedPowerLimit(); r == nvml.SUCCESS {
		g.PowerLimitW = gpulib.Float(float64(p) / 1000)
	}
	if kb, r := dev.GetPcieThroughput(nvml.PCIE_UTIL_TX_BYTES); r == nvml.SUCCESS {
		g.PCIeTxBytesPerSec = gpulib.Float(float64(kb) * 1024)
	}
	if kb, r := dev.GetPcieThroughput(nvml.PCIE_UTIL_RX_BYTES); r == nvml.SUCCESS {
		g.PCIeRxBytesPerSec = gpulib.Float(float64(kb) * 1024)
	}
	if m, r := dev.GetCurrentClocksEventReasons(); r == nvml.SUCCESS {
		g.ClocksEventReasons = gpulib.Float(float64(m))
	}
	if n, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.AGGREGATE_ECC); r == nvml.SUCCESS {
		g.ECCSingleBitAgg = gpulib.Float(float64(n))
	}
	if n, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.AGGREGATE_ECC); r == nvml.SUCCESS {
		g.ECCDoubleBitAgg = gpulib.Float(float64(n))
	}
	if corr, unc, pending, failed, r := dev.GetRemappedRows(); r == nvml.SUCCESS {
		_ = pending // a remap waiting for a reset shows in the health path, not as a value
		g.RemappedCorrectable, g.RemappedUncorrectable = gpulib.Float(float64(corr)), gpulib.Float(float64(unc))
		g.RowRemapFailure = gpulib.Float(0)
		if failed {
			g.RowRemapFailure = gpulib.Float(1)
		}
	}
	// Memory temperature and NVLink traffic are NVML field values only.
	fv := []nvml.FieldValue{{FieldId: nvml.FI_DEV_MEMORY_TEMP}, {FieldId: nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_TX, ScopeId: math.MaxUint32},
		{FieldId: nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_RX, ScopeId: math.MaxUint32}}
	if dev.GetFieldValues(fv) != nvml.SUCCESS {
		return
	}
	if v, ok := fieldValue(fv[0]); ok && v > 0 {
		g.MemTempC = gpulib.Float(v)
	}
	tx, okTx := fieldValue(fv[1])
	rx, okRx := fieldValue(fv[2])
	if okTx && okRx {
		g.NVLinkBytes = gpulib.Float((tx + rx) * 1024) // KiB
	}
}

// fieldValue decodes one NVML field value by its type; ok is false where NVML could not read it.
func fieldValue(f nvml.FieldValue) (float64, bool) {
	if nvml.Return(f.NvmlReturn) != nvml.SUCCESS {
		return 0, false
	}
	switch nvml.ValueType(f.ValueType) {
	case nvml.VALUE_TYPE_DOUBLE:
		return math.Float64frombits(binary.LittleEndian.Uint64(f.Value[:])), true
	case nvml.VALUE_TYPE_UNSIGNED_INT:
		return float64(binary.LittleEndian.Uint32(f.Value[:4])), true
	case nvml.VALUE_TYPE_UNSIGNED_LONG, nvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		return float64(binary.LittleEndian.Uint64(f.Value[:])), true
	case nvml.VALUE_TYPE_SIGNED_LONG_LONG:
		return float64(int64(binary.LittleEndian.Uint64(f.Value[:]))), true
	case nvml.VALUE_TYPE_SIGNED_INT:
		return float64(int32(binary.LittleEndian.Uint32(f.Value[:4]))), true
	}
	return 0, false
}
