package engine_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

// Two replicas on one database and one notifier: a change made through
// one reaches the other's assistant cache at once, though its TTL is an
// hour; tool server and model provider changes are published.
func TestChangeNoticesReachOtherReplicas(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := &engine.LocalNotifier{}
	console := engine.WithChangeNotices(ctx, db, n, time.Hour, nil)
	bot := engine.WithChangeNotices(ctx, db, n, time.Hour, nil)

	a := &engine.Assistant{Name: "Guide", SystemPrompt: "v1", Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "C1"}}}
	if err := console.CreateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	got := mustPrompt(t, bot, a.ID, "v1")

	// Callers get copies: changing one does not change the cache.
	got.SystemPrompt = "scribbled"
	got.Bindings[0].ChannelID = "scribbled"
	mustPrompt(t, bot, a.ID, "v1")

	a.SystemPrompt = "v2"
	if err := console.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		list, err := bot.ListAssistants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].SystemPrompt == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica still reads the old assistant (its cache was not dropped)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	byName, err := bot.AssistantByName(ctx, "guide")
	if err != nil || byName.SystemPrompt != "v2" {
		t.Fatalf("AssistantByName = %+v, %v", byName, err)
	}

	heard := make(chan string, 4)
	for _, topic := range []string{engine.TopicToolServers, engine.TopicModelProviders} {
		if err := n.Subscribe(ctx, topic, func() { heard <- topic }); err != nil {
			t.Fatal(err)
		}
	}
	if err := console.SaveToolServer(ctx, &engine.ToolServer{Name: "files", Transport: "stdio", Command: "true"}); err != nil {
		t.Fatal(err)
	}
	select {
	case topic := <-heard:
		if topic != engine.TopicToolServers {
			t.Fatalf("heard %s, want %s", topic, engine.TopicToolServers)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("saving a tool server published nothing")
	}
}

func mustPrompt(tb testing.TB, st engine.Store, id, want string) *engine.Assistant {
	tb.Helper()
	got, err := st.AssistantByID(tb.Context(), id)
	if err != nil {
		tb.Fatal(err)
	}
	if got.SystemPrompt != want {
		tb.Fatalf("system prompt = %q, want %q", got.SystemPrompt, want)
	}
	return got
}
