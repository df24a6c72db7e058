package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one `latch serve` child process: one boot of the device.
type server struct {
	cmd  *exec.Cmd
	pid  int
	url  string // http://127.0.0.1:PORT
	boot int

	started time.Time // when the process was started (real, monotonic)
	// execWall is the real wall clock just before exec: the warped wall
	// clock of the new process starts at or after it.
	execWall int64
	// stealAtStart is the machine's steal time (ms) just before exec.
	stealAtStart float64

	logDone chan struct{} // closed when stderr reached EOF
	exited  chan struct{} // closed when Wait returned
	waitErr error

	mu       sync.Mutex
	steps    int      // "wall clock stepped" lines (Watch re-anchors)
	errLines []string // level=ERROR lines
	stopRSS  chan struct{}
}

// serveURL is how `latch serve` announces its address.
var serveURL = regexp.MustCompile(`msg="latch serving" url=(http://[^ ]+?)/? `)

// startServer starts one boot and waits until it answers.
func (e *Engine) startServer() (*server, error) {
	o := &e.opt
	e.boot++
	args := []string{"serve",
		"--listen", "127.0.0.1:0",
		"--data", e.dataDir(),
		"--cameras", strconv.Itoa(o.Cameras),
		"--fps", strconv.FormatFloat(o.FPS, 'g', -1, 64),
		"--width", strconv.Itoa(o.Width), "--height", strconv.Itoa(o.Height),
		"--segment", o.Segment.String(),
		"--retain-bytes", strconv.FormatInt(o.RetainBytes, 10),
		"--time-warp", strconv.FormatFloat(o.Warp, 'g', -1, 64),
		"--trusted-proxy", "127.0.0.1",
		"--argon-memory", strconv.FormatUint(uint64(o.ArgonMemory), 10),
		"--argon-time", strconv.FormatUint(uint64(o.ArgonTime), 10),
		"--policy", e.policyFile(),
		"--debug-clock",
	}
	args = append(args, o.ExtraArgs...)
	logf, err := os.OpenFile(filepath.Join(o.Dir, fmt.Sprintf("serve-%03d.log", e.boot)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{cmd: cmd, boot: e.boot, logDone: make(chan struct{}), exited: make(chan struct{}), stopRSS: make(chan struct{})}
	s.execWall = time.Now().UnixNano()
	s.stealAtStart = stealMs()
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	s.pid = cmd.Process.Pid
	urlc := make(chan string, 1)
	go func() {
		defer close(s.logDone)
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := serveURL.FindStringSubmatch(line + " "); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
			switch {
			case strings.Contains(line, "wall clock stepped; locks re-anchored"):
				s.mu.Lock()
				s.steps++
				s.mu.Unlock()
			case strings.Contains(line, "level=ERROR"):
				s.mu.Lock()
				if len(s.errLines) < 50 {
					s.errLines = append(s.errLines, line)
				}
				s.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-s.logDone // Wait closes the pipe; read it all first
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.url = <-urlc:
	case <-s.exited:
		return nil, fmt.Errorf("boot %d: latch serve exited before serving (%v); see %s", e.boot, s.waitErr, filepath.Join(o.Dir, fmt.Sprintf("serve-%03d.log", e.boot)))
	case <-time.After(60 * time.Second):
		s.kill()
		return nil, fmt.Errorf("boot %d: latch serve did not announce its address within 60s", e.boot)
	}
	// Serving is announced just before Serve; wait until it answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.http.Get(s.url + "/api/v1/status")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("boot %d: %s/api/v1/status did not answer: %v", e.boot, s.url, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e.opt.RSSEvery > 0 {
		go e.sampleRSS(s)
	}
	return s, nil
}

// kill is kill -9: the process gets no chance to do anything.
func (s *server) kill() {
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	<-s.exited
	s.stop()
}

// term is a clean shutdown (SIGTERM); it reports a shutdown that failed or
// took longer than timeout (then the process is killed).
func (s *server) term(timeout time.Duration) error {
	_ = syscall.Kill(s.pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.kill()
		return fmt.Errorf("boot %d: clean shutdown took longer than %s; killed", s.boot, timeout)
	}
	s.stop()
	var ee *exec.ExitError
	if s.waitErr != nil && !errors.As(s.waitErr, &ee) {
		return s.waitErr
	}
	if s.waitErr != nil {
		return fmt.Errorf("boot %d: clean shutdown exited with %v", s.boot, s.waitErr)
	}
	return nil
}

func (s *server) stop() {
	select {
	case <-s.stopRSS:
	default:
		close(s.stopRSS)
	}
}

// alive reports whether the process still runs.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) stepLines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.steps
}

func (s *server) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errLines...)
}

// RSSSample is the server's resident memory at one moment.
type RSSSample struct {
	RealSeconds    float64 `json:"real_s"`    // since the engine started
	VirtualSeconds float64 `json:"virtual_s"` // the simulator's instant then
	Boot           int     `json:"boot"`
	RSSKiB         int64   `json:"rss_kib"`
	// LagSeconds is how far the server's clock was ahead of the
	// simulator's at the last decision (virtual seconds).
	LagSeconds float64 `json:"lag_s"`
	// RunWaitMs is the time the server's threads have waited for a CPU so
	// far in this boot (/proc/PID/task/*/schedstat): when it jumps, the
	// host, not the server, was the bottleneck.
	RunWaitMs float64 `json:"run_wait_ms"`
	// StealMs is the machine's steal time so far (/proc/stat: time the
	// hypervisor ran something else while this VM's CPUs had work).
	StealMs float64 `json:"steal_ms"`
}

// sampleRSS reads VmRSS from /proc every RSSEvery until the boot ends.
func (e *Engine) sampleRSS(s *server) {
	t := time.NewTicker(e.opt.RSSEvery)
	defer t.Stop()
	path := fmt.Sprintf("/proc/%d/status", s.pid)
	for {
		select {
		case <-s.stopRSS:
			return
		case <-t.C:
		}
		kib, err := readVmRSS(path)
		if err != nil {
			continue
		}
		e.rssMu.Lock()
		e.rss = append(e.rss, RSSSample{RealSeconds: time.Since(e.began).Seconds(),
			VirtualSeconds: time.Duration(e.simNow.Load()).Seconds(), Boot: s.boot, RSSKiB: kib,
			LagSeconds: time.Duration(e.lag.Load()).Seconds(), RunWaitMs: float64(runWait(s.pid)) / 1e6, StealMs: stealMs()})
		e.rssMu.Unlock()
	}
}

// runWait sums the run-queue wait (ns) of every thread of a process.
func runWait(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
	}
	return sum
}

// stealMs is the machine's steal time so far in milliseconds: the eighth
// value of /proc/stat's cpu line, in USER_HZ (100 a second on Linux).
func stealMs() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	n, _ := strconv.ParseFloat(f[8], 64)
	return n * 10
}

func readVmRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest))
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// waitCtx is a context bounded by d.
func waitCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
