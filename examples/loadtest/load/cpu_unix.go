//go:build unix

package load

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// processCPU returns this process's CPU time (user+system) in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(time.Duration(ru.Utime.Nano())+time.Duration(ru.Stime.Nano())) / float64(time.Second)
}

// serverCPU returns the CPU time (utime+stime) of process pid in seconds,
// from /proc/<pid>/stat, or -1 when pid is not positive or unreadable.
func serverCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	return parseProcStat(string(b))
}
