package memtrim

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux is the real host: /proc, pidfd_open and process_madvise.
func Linux() Host {
	return Host{
		Exe:     func(pid int) (string, error) { return os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)) },
		Maps:    func(pid int) ([]byte, error) { return os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid)) },
		PageOut: pageOut,
	}
}

func pageOut(pid int, ranges []Range) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(fd)
	for _, r := range ranges {
		// One range per call: the kernel stops at the first failing one, and a range the
		// process unmapped meanwhile must not keep the others from being advised.
		// The addresses are the other process's: an iovec of plain integers, not pointers.
		iov := struct{ base, len uintptr }{uintptr(r.Start), uintptr(r.Len)}
		if _, _, e := unix.Syscall6(unix.SYS_PROCESS_MADVISE, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, unix.MADV_PAGEOUT, 0, 0); e != 0 && e != unix.ENOMEM {
			return fmt.Errorf("process_madvise: %w", e)
		}
	}
	return nil
}
