//go:build linux

package session_test

import (
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// boardThreadClock returns a func reading the calling OS thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID) and a func to release the thread. On a shared,
// loaded machine it leaves out the time the benchmark's thread spent
// descheduled, which wall time counts. The caller must stay on its
// goroutine between the two.
func boardThreadClock() (now func() time.Duration, release func()) {
	runtime.LockOSThread()
	const clockThreadCPUTime = 3
	return func() time.Duration {
		var ts syscall.Timespec
		if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
			panic(errno)
		}
		return time.Duration(ts.Nano())
	}, runtime.UnlockOSThread
}
