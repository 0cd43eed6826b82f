package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Server is a system under test running as a child process.
type Server struct {
	Name   string
	Cmd    *exec.Cmd
	URL    string      // base URL, set by the caller
	Output *TailWriter // the end of its standard error
	Done   chan struct{}
}

// StartServer starts cmd with its standard output and error written to
// logFile and the end of its error output kept in Output.
func StartServer(name string, cmd *exec.Cmd, logFile string) (*Server, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, Cmd: cmd, Output: &TailWriter{}, Done: make(chan struct{})}
	cmd.Stdout = f
	cmd.Stderr = io.MultiWriter(f, s.Output)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(s.Done)
	}()
	return s, nil
}

// PID is the server's process id.
func (s *Server) PID() int { return s.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.Done:
		return true
	default:
		return false
	}
}

// WaitReady polls ready every 100 ms until it says yes, the process exits
// or timeout passes.
func (s *Server) WaitReady(ctx context.Context, timeout time.Duration, ready func(*http.Client) bool) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.Done:
			return fmt.Errorf("%s exited before it was ready (%s); its output:\n%s", s.Name, s.Cmd.ProcessState, s.Output)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ready(c) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; its output:\n%s", s.Name, timeout, s.Output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop asks the server to stop (SIGTERM) and kills it after 30 s.
func (s *Server) Stop() {
	if s.Exited() {
		return
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.Done:
	case <-time.After(30 * time.Second):
		Logf("%s did not stop within 30 s: killing it", s.Name)
		_ = s.Cmd.Process.Kill()
		<-s.Done
	}
}

// HTTPReady is a readiness check for WaitReady: GET url answers 200.
func HTTPReady(url string) func(*http.Client) bool {
	return func(c *http.Client) bool {
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// TCPReady is a readiness check for WaitReady: addr accepts connections.
func TCPReady(addr string) func(*http.Client) bool {
	return func(*http.Client) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// FreePort is a TCP port on loopback that nothing listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WithoutPrefix drops the environment variables whose names start with
// prefix, so that the caller's configuration does not leak into a system.
func WithoutPrefix(env []string, prefix string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// ProcStatusBytes reads a "kB" field of /proc/PID/status (VmHWM: peak
// resident set, VmRSS: current) in bytes; 0 when unknown.
func ProcStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return StatusField(b, field)
}

// StatusField is a "kB" field of a /proc/PID/status text in bytes; 0 when
// missing.
func StatusField(status []byte, field string) int64 {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// ProcCPUSeconds is the user and system CPU time of a process (all its
// threads) from /proc/PID/stat, in seconds; -1 when unknown.
func ProcCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	return StatCPUSeconds(b)
}

// StatCPUSeconds is utime + stime of a /proc/PID/stat text in seconds; -1
// when it cannot be read.
func StatCPUSeconds(stat []byte) float64 {
	// Fields after the command name, which may hold spaces and
	// parentheses: state is field 3, utime 14 and stime 15, in clock ticks
	// (USER_HZ, 100 on Linux).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(u+s) / 100
}

// SelfCPUSeconds is this process's user and system CPU time; -1 when
// unknown.
func SelfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// TailWriter keeps the last few kilobytes written to it; it is safe for
// concurrent use.
type TailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (t *TailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-8<<10:]...)
	}
	return len(p), nil
}

// Last is at most n bytes of the end of the output, from a line start.
func (t *TailWriter) Last(n int) string {
	s := t.text()
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// LastLine is the last line that is not empty.
func (t *TailWriter) LastLine() string {
	s := t.text()
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

// String is the kept output, "(nothing)" when there is none.
func (t *TailWriter) String() string {
	if s := t.text(); s != "" {
		return s
	}
	return "(nothing)"
}

func (t *TailWriter) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Build runs go build for pkg into bin, its output on the bench's stderr,
// and evicts the binary from the page cache (see Evict).
func Build(ctx context.Context, pkg, bin string) error {
	Logf("building %s", pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return Evict(bin)
}

// Evict writes a file's pages to disk and drops them from the page cache,
// so that a binary the bench has just built starts as a deployed one does:
// read from disk. Run straight from the pages the linker wrote, the same
// binary showed 2 to 10 MiB more file-backed resident memory (the kernel
// maps those pages in larger pieces), which a memory comparison would
// count against it.
func Evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("evict %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evict %s: %w", path, err)
	}
	return nil
}
