package bench

import (
	"runtime"
	"syscall"
	"time"
)

// cpuTimes returns the user and system CPU time this process has used.
func cpuTimes() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// CPUUsage is the CPU the load generator's process used during a run.
type CPUUsage struct {
	UserSec float64 `json:"user_s"`
	SysSec  float64 `json:"sys_s"`
	// Percent is (user+sys) / wall time, in percent of one core.
	Percent float64 `json:"percent_of_one_core"`
	Cores   int     `json:"cores"`
	// InProcessBroker is true when the broker ran in the same process (tests),
	// so the figure includes it.
	InProcessBroker bool `json:"in_process_broker,omitempty"`
}

// CPUMeter measures the CPU this process uses from a point in time.
type CPUMeter struct {
	user, sys time.Duration
	at        time.Time
}

// StartCPU starts a CPUMeter now.
func StartCPU() CPUMeter {
	u, s := cpuTimes()
	return CPUMeter{user: u, sys: s, at: time.Now()}
}

// Since returns the usage from m to now, and a meter starting now.
func (m CPUMeter) Since() (CPUUsage, CPUMeter) {
	n := StartCPU()
	wall := n.at.Sub(m.at)
	u := CPUUsage{
		UserSec: (n.user - m.user).Seconds(),
		SysSec:  (n.sys - m.sys).Seconds(),
		Cores:   runtime.NumCPU(),
	}
	if wall > 0 {
		u.Percent = 100 * (u.UserSec + u.SysSec) / wall.Seconds()
	}
	return u, n
}
