package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

// crashSlack is a Slack Web API whose chat method named hang never answers
// its first call: the bot is stuck there, mid-reply, when the test kills it.
type crashSlack struct {
	hang string
	mu   sync.Mutex
	seen map[string]int
	msgs []map[string]string
	stop chan struct{}
}

func (c *crashSlack) handler(method string, reply func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		c.mu.Lock()
		c.seen[method]++
		first := c.seen[method] == 1
		c.mu.Unlock()
		if method == c.hang && first {
			<-c.stop
			return
		}
		reply(w, r)
	}
}

func (c *crashSlack) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[method]
}

func (c *crashSlack) posted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func newCrashSlack(t *testing.T, hang string) (*slacktest.Server, *crashSlack) {
	c := &crashSlack{hang: hang, seen: map[string]int{}, stop: make(chan struct{})}
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) }
	s := slacktest.NewTestServer(func(cu slacktest.Customize) {
		cu.Handle("/chat.startStream", c.handler("chat.startStream", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":false,"error":"unknown_method"}`))
		}))
		cu.Handle("/chat.postMessage", c.handler("chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			c.msgs = append(c.msgs, map[string]string{"thread_ts": r.Form.Get("thread_ts"), "text": r.Form.Get("text"), "metadata": r.Form.Get("metadata")})
			ts := fmt.Sprintf("1700000001.%06d", len(c.msgs))
			c.mu.Unlock()
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, r.Form.Get("channel"), ts)
		}))
		cu.Handle("/chat.update", c.handler("chat.update", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q,"text":"x"}`, r.Form.Get("channel"), r.Form.Get("ts"))
		}))
		cu.Handle("/conversations.replies", c.handler("conversations.replies", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":true,"messages":[],"has_more":false}`))
		}))
		cu.Handle("/reactions.add", c.handler("reactions.add", ok))
		cu.Handle("/reactions.remove", c.handler("reactions.remove", ok))
	})
	s.Start()
	t.Cleanup(func() { close(c.stop); s.Stop() })
	return s, c
}

// mustBuildBot builds cmd/bot once per test binary.
var buildBot = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "convosphere-bot-*")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bot")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBot runs the bot binary and waits until it is ready.
func startBot(t *testing.T, env []string, addr string) *exec.Cmd {
	t.Helper()
	bin, err := buildBot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if testing.Verbose() {
				t.Log(sc.Text())
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the bot did not become ready")
	return nil
}

// TestCrashExactlyOnce kills -9 the bot process while it answers, at two
// points (before anything is posted; after posting, before the event is
// marked done), and restarts it: the question gets exactly one answer.
func TestCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the bot binary")
	}
	tests := []struct {
		name, hang string
	}{
		{"between ack and reply", "chat.postMessage"},
		{"between posting and done", "chat.update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, fake := newCrashSlack(t, tt.hang)
			addr := freeAddr(t)
			dataDir := t.TempDir()
			mustDefaultAssistant(t, dataDir)
			env := []string{
				"CONVOSPHERE_DATA_DIR=" + dataDir, "CONVOSPHERE_BOT_ADDR=" + addr, "CONVOSPHERE_LOG_LEVEL=debug",
				"CONVOSPHERE_ENGINE_TURN_TIMEOUT=3s", "CONVOSPHERE_SLACK_BOT_TOKEN=xoxb-crash",
				"CONVOSPHERE_SLACK_SIGNING_SECRET=" + slackSecret, "CONVOSPHERE_SLACK_API_URL=" + s.GetAPIURL(),
				"CONVOSPHERE_CONFIG=",
			}
			first := startBot(t, env, addr)
			if code := postEvent(t, addr, "EvCrash", 0); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			deadline := time.Now().Add(20 * time.Second)
			for fake.count(tt.hang) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if fake.count(tt.hang) == 0 {
				t.Fatalf("the bot never called %s", tt.hang)
			}
			if err := first.Process.Kill(); err != nil { // SIGKILL: no clean-up at all
				t.Fatal(err)
			}
			_ = first.Wait()
			before := fake.posted()

			startBot(t, env, addr)
			// Slack, not having seen the first 200 in time, delivers again.
			if code := postEvent(t, addr, "EvCrash", 1); code != http.StatusOK {
				t.Fatalf("redelivery status %d", code)
			}
			deadline = time.Now().Add(30 * time.Second)
			for fake.count("reactions.remove") == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond) // the answer ends by clearing the reaction
			}
			if fake.count("reactions.remove") == 0 {
				t.Fatal("the restarted bot did not finish the answer")
			}
			if n := fake.posted(); n != 1 {
				t.Errorf("%d messages posted (%d before the crash), want exactly 1", n, before)
			}
			if !strings.Contains(fake.msgs[0]["metadata"], "EvCrash") {
				t.Errorf("the answer does not carry its event id in its metadata: %q", fake.msgs[0]["metadata"])
			}
		})
	}
}

// mustDefaultAssistant stores a default assistant in the data directory's
// database, as an admin would in the console.
func mustDefaultAssistant(t *testing.T, dataDir string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dataDir, "convosphere.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateAssistant(context.Background(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
}
