package mattermost

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
)

// run holds the websocket while this replica has the leader lock (one
// connection per bot account across replicas): it takes the lock, and
// takes it again after losing it (another replica connects meanwhile).
func (a *Adapter) run(ctx context.Context) {
	key := "mattermost-ws:" + a.cfg.URL + ":" + a.bot.Id
	for ctx.Err() == nil {
		a.setStandby(true)
		lease := engine.AcquireLock(ctx, a.cfg.Locker, key, 5*time.Second, a.log)
		a.setStandby(false)
		if lease == nil {
			return
		}
		a.listen(lease.Context())
		lease.Release()
		if ctx.Err() == nil {
			a.log.WarnContext(ctx, "mattermost: leader lock lost; another replica holds the websocket", "cause", context.Cause(lease.Context()))
			a.setConnected(ctx, false, "leader lock lost; waiting to take it again")
		}
	}
}

func (a *Adapter) setStandby(on bool) {
	a.mu.Lock()
	a.standby = on
	a.mu.Unlock()
}

// listen reads events, and reconnects with backoff, asking the server to
// replay what was missed (connection_id + sequence_number), until ctx
// (the lease) ends.
func (a *Adapter) listen(ctx context.Context) {
	wsURL := "ws" + strings.TrimPrefix(a.cfg.URL, "http")
	var (
		connID  string
		nextSeq int64 // the next event sequence expected on connID
		backoff = time.Second
	)
	for ctx.Err() == nil {
		ws, err := model.NewReliableWebSocketClientWithDialer(websocket.DefaultDialer, wsURL, a.cfg.Token, connID, int(nextSeq), true)
		if err != nil {
			a.log.WarnContext(ctx, "mattermost websocket: cannot connect; retrying", "error", err, "retry_in_ms", backoff.Milliseconds())
			a.setConnected(ctx, false, "websocket: "+err.Error())
			if !engine.Sleep(ctx, engine.Jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		ws.Listen()
		stop := context.AfterFunc(ctx, ws.Close)
		connected := time.Now()
		// A resumed connection says no hello: the server just replays
		// what was missed. A new one says hello (handled below).
		a.setConnected(ctx, true, "websocket")
		for ev := range ws.EventChannel {
			a.log.DebugContext(ctx, "mattermost event", "event", string(ev.EventType()), "seq", ev.GetSequence())
			if ev.EventType() == model.WebsocketEventHello {
				id, _ := ev.GetData()["connection_id"].(string)
				missed := connID != "" && id != connID
				connID, nextSeq = id, ev.GetSequence()+1
				backoff = time.Second
				if missed {
					// The server did not have what we missed any more.
					a.log.InfoContext(ctx, "mattermost: new websocket connection; reading the posts missed meanwhile")
					a.backfill(ctx)
				}
				continue
			}
			if s := ev.GetSequence(); s >= nextSeq {
				nextSeq = s + 1
			}
			if ev.EventType() == model.WebsocketEventPosted {
				a.posted(ctx, ev)
			}
		}
		stop()
		if ctx.Err() != nil {
			return
		}
		a.setConnected(ctx, false, "websocket closed")
		a.log.WarnContext(ctx, "mattermost websocket closed; reconnecting", "error", ws.ListenError)
		if time.Since(connected) < 10*time.Second {
			// It closed at once: do not hammer the server.
			if !engine.Sleep(ctx, engine.Jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
	}
}

// posted handles a "posted" event.
func (a *Adapter) posted(ctx context.Context, ev *model.WebSocketEvent) {
	data := ev.GetData()
	raw, _ := data["post"].(string)
	var post model.Post
	if err := json.Unmarshal([]byte(raw), &post); err != nil {
		a.log.WarnContext(ctx, "mattermost: undecodable post event", "error", err)
		return
	}
	channelType, _ := data["channel_type"].(string)
	var mentions []string
	if m, ok := data["mentions"].(string); ok {
		_ = json.Unmarshal([]byte(m), &mentions)
	}
	a.handlePost(ctx, &post, channelType, slices.Contains(mentions, a.bot.Id))
}

// handlePost stores a post addressed to the bot: a DM, a mention, or
// another message as the channel's trigger policy says. It is also used
// for the posts read back after missed events; the inbox drops a post
// stored before.
func (a *Adapter) handlePost(ctx context.Context, post *model.Post, channelType string, mentioned bool) {
	a.mu.Lock()
	if post.CreateAt > a.lastSeen {
		a.lastSeen = post.CreateAt
	}
	a.mu.Unlock()
	if post.Id == "" || post.ChannelId == "" || post.UserId == "" || post.UserId == a.bot.Id || post.Type != "" || post.GetProp("from_bot") == "true" || post.DeleteAt != 0 {
		return
	}
	mentioned = mentioned || strings.Contains(post.Message, "@"+a.bot.Username)
	dm := channelType == string(model.ChannelTypeDirect)
	if !dm && !mentioned {
		all, err := a.store.ListAssistants(ctx)
		if err != nil {
			a.log.ErrorContext(ctx, "mattermost: read trigger policy", "error", err)
			return
		}
		switch engine.TriggerFor(all, engine.Channel{Platform: engine.PlatformMattermost, ID: post.ChannelId}) {
		case engine.TriggerAll:
		case engine.TriggerThread:
			if post.RootId == "" {
				return
			}
			if _, err := a.store.ConversationByThread(ctx, engine.PlatformMattermost, post.ChannelId, post.RootId); err != nil {
				return // not a thread the assistant is in (or unknown now)
			}
		default:
			return
		}
	}
	thread := post.RootId
	if thread == "" {
		thread = post.Id
	}
	text := strings.TrimSpace(strings.ReplaceAll(post.Message, "@"+a.bot.Username, ""))
	msg := engine.Message{
		ID: post.Id,
		Thread: engine.Thread{
			Channel: engine.Channel{Platform: engine.PlatformMattermost, ID: post.ChannelId, DM: dm},
			ID:      thread,
		},
		User: engine.ChatUser{ID: post.UserId}, Text: text, ReceivedAt: a.now(),
	}
	raw, err := json.Marshal(msg)
	if err == nil {
		_, err = a.store.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: post.Id, ThreadKey: msg.Thread.Key(), Payload: raw})
	}
	if err != nil {
		a.log.ErrorContext(ctx, "mattermost post not stored", "post_id", post.Id, "error", err)
		// The websocket does not deliver it again: say so in the thread.
		_, _, _ = a.api.CreatePost(ctx, &model.Post{ChannelId: post.ChannelId, RootId: thread,
			Message: "Sorry, I could not take your question just now (our database is unavailable). Please ask again in a minute."})
	}
}

// backfill reads the posts created since the last one seen in the
// channels the bot is in, and handles them like posted events.
func (a *Adapter) backfill(ctx context.Context) {
	a.mu.Lock()
	since := a.lastSeen
	a.mu.Unlock()
	teams, _, err := a.api.GetTeamsForUser(ctx, a.bot.Id, "")
	if err != nil {
		a.log.ErrorContext(ctx, "mattermost backfill: list teams", "error", err)
		return
	}
	seen := map[string]bool{}
	for _, team := range teams {
		channels, _, err := a.api.GetChannelsForTeamForUser(ctx, team.Id, a.bot.Id, false, "")
		if err != nil {
			a.log.ErrorContext(ctx, "mattermost backfill: list channels", "team_id", team.Id, "error", err)
			continue
		}
		for _, ch := range channels {
			if seen[ch.Id] || ch.LastPostAt <= since {
				continue
			}
			seen[ch.Id] = true
			list, _, err := a.api.GetPostsSince(ctx, ch.Id, since, false)
			if err != nil {
				a.log.ErrorContext(ctx, "mattermost backfill: read posts", "channel_id", ch.Id, "error", err)
				continue
			}
			posts := list.ToSlice()
			slices.Reverse(posts) // oldest first
			for _, p := range posts {
				if p.CreateAt > since {
					a.handlePost(ctx, p, string(ch.Type), false)
				}
			}
		}
	}
}
