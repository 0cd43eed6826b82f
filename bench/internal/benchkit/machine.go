package benchkit

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a benchmark ran, from /proc and /etc/os-release.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemBytes int64  `json:"mem_bytes"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %.1f GiB RAM, %s, Linux %s", m.CPU, m.Cores, float64(m.MemBytes)/(1<<30), m.OS, m.Kernel)
}

// ReadMachine describes this machine; what it cannot read says "unknown".
func ReadMachine() Machine {
	m := Machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), OS: "unknown OS"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v := cpuModel(string(b)); v != "" {
			m.CPU = v
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemBytes = memTotal(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if v := prettyName(string(b)); v != "" {
			m.OS = v
		}
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo, spaces squeezed.
func cpuModel(cpuinfo string) string {
	for line := range strings.SplitSeq(cpuinfo, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 when missing.
func memTotal(meminfo string) int64 {
	for line := range strings.SplitSeq(meminfo, "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// prettyName is PRETTY_NAME of /etc/os-release, unquoted.
func prettyName(osRelease string) string {
	for line := range strings.SplitSeq(osRelease, "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// LoadAverage is the 1-minute load average from /proc/loadavg, "" when
// unknown: other work on the machine skews latencies, so reports give it.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return ""
}
