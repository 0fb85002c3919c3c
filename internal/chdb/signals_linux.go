package chdb

import (
	"fmt"
	"syscall"
	"unsafe"
)

// sigaction is the kernel's struct sigaction as rt_sigaction(2) takes it on Linux
// (amd64 and arm64 alike): handler, flags, restorer, mask.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// goSignals are the signals whose handlers the Go runtime needs back after
// libchdb is loaded and connected: SIGSEGV and the other synchronous faults are how
// Go turns a nil dereference into a recoverable panic, and the rest drive signal.Notify.
var goSignals = []syscall.Signal{
	syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGABRT, syscall.SIGSYS,
	syscall.SIGTRAP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGPIPE,
}

// savedHandlers are the handlers in force before libchdb took over.
type savedHandlers map[syscall.Signal]sigaction

// saveSignalHandlers reads the current handlers with the raw syscall (the Go
// runtime's own, as signal.Notify would not show them).
func saveSignalHandlers() (savedHandlers, error) {
	saved := savedHandlers{}
	for _, sig := range goSignals {
		var old sigaction
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), unsafe.Sizeof(old.mask), 0, 0); errno != 0 {
			return nil, fmt.Errorf("rt_sigaction(%v): %w", sig, errno)
		}
		saved[sig] = old
	}
	return saved, nil
}

// restore puts the saved handlers back. ClickHouse installs handlers of its own
// when it starts (with chdb_set_signal_handlers_enabled(0) it still replaces the
// fault handlers with ones that kill the process), which turns a Go nil
// dereference anywhere in the process into SIGSEGV instead of a panic.
func (s savedHandlers) restore() error {
	for sig, act := range s {
		act := act
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, unsafe.Sizeof(act.mask), 0, 0); errno != 0 {
			return fmt.Errorf("rt_sigaction(%v): %w", sig, errno)
		}
	}
	return nil
}
