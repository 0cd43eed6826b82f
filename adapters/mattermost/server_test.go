package mattermost

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// mattermostURL is the real Mattermost server the integration test uses
// (scripts/services.sh starts one); the test is skipped without it unless
// CONVOSPHERE_REQUIRE_SERVERS is set.
func mattermostURL(t *testing.T) string {
	u := os.Getenv("CONVOSPHERE_TEST_MATTERMOST_URL")
	if u == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			t.Fatal("CONVOSPHERE_TEST_MATTERMOST_URL is not set: run scripts/services.sh start")
		}
		t.Skip("no Mattermost server: set CONVOSPHERE_TEST_MATTERMOST_URL (scripts/services.sh start)")
	}
	return strings.TrimRight(u, "/")
}

// proxy forwards TCP connections to target and can cut them all, as a
// network failure would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// result holds a Client4 call's value and error: check(c.Call(…)).must(t).
type result[T any] struct {
	v   T
	err error
}

func check[T any](v T, _ *model.Response, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// TestRealServer runs the adapter against a real Mattermost 6.7.2: a team,
// a user and a bot account made through the API; a DM answered in its
// thread; a channel mention answered; a long answer split; and answers
// still coming after the websocket was cut.
func TestRealServer(t *testing.T) {
	base := mattermostURL(t)
	ctx := context.Background()
	suffix := strings.ToLower(model.NewId()[:8])

	admin := model.NewAPIv4Client(base)
	// The first user of a fresh server is its system admin; on a server
	// used before, sign in as that admin.
	adminUser := &model.User{Email: "admin@convosphere.test", Username: "admin", Password: "Admin-passw0rd!"}
	if _, _, err := admin.CreateUser(ctx, adminUser); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Logf("create admin: %v (signing in)", err)
	}
	check(admin.Login(ctx, adminUser.Email, adminUser.Password)).must(t)
	team := check(admin.CreateTeam(ctx, &model.Team{Name: "convo-" + suffix, DisplayName: "Convo " + suffix, Type: model.TeamOpen})).must(t)
	alice := check(admin.CreateUser(ctx, &model.User{Email: "alice-" + suffix + "@convosphere.test", Username: "alice-" + suffix, Password: "Alice-passw0rd!"})).must(t)
	check(admin.AddTeamMember(ctx, team.Id, alice.Id)).must(t)
	bot := check(admin.CreateBot(ctx, &model.Bot{Username: "helper-" + suffix, DisplayName: "Helper"})).must(t)
	check(admin.AddTeamMember(ctx, team.Id, bot.UserId)).must(t)
	token := check(admin.CreateUserAccessToken(ctx, bot.UserId, "convosphere test")).must(t)
	channel := check(admin.CreateChannel(ctx, &model.Channel{TeamId: team.Id, Name: "town-" + suffix, DisplayName: "Town", Type: model.ChannelTypeOpen})).must(t)
	check(admin.AddChannelMember(ctx, channel.Id, alice.Id)).must(t)
	check(admin.AddChannelMember(ctx, channel.Id, bot.UserId)).must(t)

	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "convosphere.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"))
	a, err := New(Config{URL: "http://" + px.ln.Addr().String(), Token: token.Token, MaxPostRunes: 400, Locker: &engine.LocalLocker{}}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	long := strings.Repeat("Deploy step by step and check every dashboard. ", 30) // ~1400 characters
	llm := enginetest.NewModel(enginetest.Reply{Chunks: []string{"The SLA is 99.9%."}})
	llm.Fallback = &enginetest.Reply{Chunks: []string{long}}
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: db, Conversations: db, Traces: db, Model: llm})
	if err != nil {
		t.Fatal(err)
	}
	w, err := engine.NewWorker(engine.WorkerConfig{PollInterval: 50 * time.Millisecond}, engine.WorkerDeps{Inbox: db, Handler: eng,
		Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformMattermost: a}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go func() { _ = w.Run(wctx) }()
	waitReady(t, a)

	user := model.NewAPIv4Client(base)
	check(user.Login(ctx, alice.Email, "Alice-passw0rd!")).must(t)
	dm := check(user.CreateDirectChannel(ctx, alice.Id, bot.UserId)).must(t)

	// A DM is answered in its thread.
	q := check(user.CreatePost(ctx, &model.Post{ChannelId: dm.Id, Message: "What is our SLA?"})).must(t)
	replies := waitReplies(t, user, q.Id, bot.UserId, 1)
	if !strings.Contains(replies[0].Message, "99.9%") {
		t.Errorf("DM answer %q", replies[0].Message)
	}

	// A mention in a channel is answered, here with a long answer split.
	q = check(user.CreatePost(ctx, &model.Post{ChannelId: channel.Id, Message: "@helper-" + suffix + " how do I deploy?"})).must(t)
	replies = waitReplies(t, user, q.Id, bot.UserId, 4)
	for _, r := range replies {
		if n := len([]rune(r.Message)); n > 400 {
			t.Errorf("a part has %d characters, over the 400 configured", n)
		}
	}
	// A post in the channel that does not mention the bot is left alone.
	quiet := check(user.CreatePost(ctx, &model.Post{ChannelId: channel.Id, Message: "lunch?"})).must(t)

	// The websocket is cut: the bot reconnects and goes on answering.
	px.cut()
	time.Sleep(200 * time.Millisecond)
	waitReady(t, a)
	q = check(user.CreatePost(ctx, &model.Post{ChannelId: dm.Id, Message: "Still there?"})).must(t)
	waitReplies(t, user, q.Id, bot.UserId, 1)
	if got := bots(t, user, quiet.Id, bot.UserId); len(got) != 0 {
		t.Errorf("the bot answered a post that did not mention it: %v", got)
	}
}

func waitReady(t *testing.T, a *Adapter) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for a.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the websocket did not connect: %v", a.Ready())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bots returns the bot's posts in the thread of root.
func bots(t *testing.T, c *model.Client4, root, botID string) []*model.Post {
	t.Helper()
	list, resp, err := c.GetPostThread(context.Background(), root, "", false)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil
		}
		t.Fatal(err)
	}
	var out []*model.Post
	for _, p := range list.ToSlice() {
		if p.UserId == botID {
			out = append(out, p)
		}
	}
	return out
}

// waitReplies waits for at least n posts of the bot in the thread of root
// (and for the answer to settle).
func waitReplies(t *testing.T, c *model.Client4, root, botID string, n int) []*model.Post {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := bots(t, c, root, botID); len(got) >= n {
			time.Sleep(1500 * time.Millisecond) // the last edits
			return bots(t, c, root, botID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("fewer than %d answers of the bot in thread %s", n, root)
	return nil
}
