//go:build linux

package procs

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Measured tells whether ProcessAndHost reads the process's and the
// host's CPU time here: on Linux it does.
const Measured = true

// userHZ is the unit of /proc/stat's times: 1/100 s on every Linux
// architecture Go runs on (USER_HZ, fixed by the kernel's ABI).
const userHZ = 100

// ProcessAndHost reads the process's CPU time (getrusage) and the host's
// idle CPU time (/proc/stat's idle and iowait): Counters for Linux.
func ProcessAndHost() (used, idle time.Duration, ok bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		used = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	idle, ok = hostIdle()
	return used, idle, ok
}

// hostIdle is the idle and iowait time of /proc/stat's first line, which
// sums every CPU.
func hostIdle() (time.Duration, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return 0, false
	}
	return parseIdle(line)
}

// parseIdle reads "cpu  user nice system idle iowait ..." as the idle and
// iowait times.
func parseIdle(line []byte) (time.Duration, bool) {
	fs := bytes.Fields(line)
	if len(fs) < 6 || string(fs[0]) != "cpu" {
		return 0, false
	}
	var ticks uint64
	for _, f := range fs[4:6] {
		n, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / userHZ), true
}
