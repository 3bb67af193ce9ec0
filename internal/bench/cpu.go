package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"
)

// GCMemoryLimit is the heap the load generator grows to before it collects
// (TuneGC).
const GCMemoryLimit = 128 << 20

// TuneGC turns the load generator's periodic garbage collection off and
// lets it collect only when its memory reaches GCMemoryLimit, unless GOGC
// or GOMEMLIMIT is set in the environment. With the default GOGC=100 its
// live heap of a few MB is collected 30 times a second at 20,000 msgs/s,
// and each cycle's pauses and mark work delay the responses it is
// timing: latency the broker did not cause. It returns the setting in
// force, for the summary.
func TuneGC() string {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return fmt.Sprintf("from the environment (GOGC=%q GOMEMLIMIT=%q)", os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(GCMemoryLimit)
	return fmt.Sprintf("GOGC=off GOMEMLIMIT=%dMiB (txmq bench's default)", GCMemoryLimit>>20)
}

// gcCycles returns the garbage collections this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

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
	// GCCycles is how many garbage collections the load generator ran.
	GCCycles uint64 `json:"gc_cycles"`
	// InProcessBroker is true when the broker ran in the same process (tests),
	// so the figure includes it.
	InProcessBroker bool `json:"in_process_broker,omitempty"`
}

// CPUMeter measures the CPU this process uses from a point in time.
type CPUMeter struct {
	user, sys time.Duration
	gcs       uint64
	at        time.Time
}

// StartCPU starts a CPUMeter now.
func StartCPU() CPUMeter {
	u, s := cpuTimes()
	return CPUMeter{user: u, sys: s, gcs: gcCycles(), at: time.Now()}
}

// Since returns the usage from m to now, and a meter starting now.
func (m CPUMeter) Since() (CPUUsage, CPUMeter) {
	n := StartCPU()
	wall := n.at.Sub(m.at)
	u := CPUUsage{
		UserSec:  (n.user - m.user).Seconds(),
		SysSec:   (n.sys - m.sys).Seconds(),
		Cores:    runtime.NumCPU(),
		GCCycles: n.gcs - m.gcs,
	}
	if wall > 0 {
		u.Percent = 100 * (u.UserSec + u.SysSec) / wall.Seconds()
	}
	return u, n
}
