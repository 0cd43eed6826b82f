package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/convosphere/convosphere/engine"
)

// fatalCloseCodes end a gateway session for good: reconnecting would be
// refused again the same way (a wrong token, bad shard or intents).
var fatalCloseCodes = map[int]string{
	4004: "authentication failed: discord.bot_token is wrong or was reset",
	4010: "invalid shard",
	4011: "sharding required: the bot is in too many servers for one session",
	4012: "invalid API version",
	4013: "invalid intents",
	4014: "disallowed intents: enable them on the Developer Portal's Bot page, or remove them",
}

// intents are what the bot listens to: messages in servers and DMs. The
// content of messages that mention the bot, and of DMs, comes without the
// privileged Message Content intent.
const intents = discordgo.IntentsGuildMessages | discordgo.IntentsDirectMessages

// gatewayState is what Ready reports.
type gatewayState struct {
	mu      sync.Mutex
	up      bool
	standby bool  // waiting for the leader lock: another replica holds the gateway
	failed  error // a fatal close: no more attempts
}

// startGateway opens the gateway session in the background: messages that
// mention the bot and DMs are stored like interactions, slash commands
// over the gateway are answered through the REST callback. discordgo keeps
// the connection (heartbeats, resume); this loop reconnects after a drop,
// with backoff, unless Discord closed it with a fatal code.
func (a *Adapter) startGateway(ctx context.Context) {
	s := a.api
	s.Identify.Intents = intents
	s.ShouldReconnectOnError = false // reconnects are ours, so fatal close codes end them
	disconnected := make(chan struct{}, 1)
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) {
		select {
		case disconnected <- struct{}{}:
		default:
		}
	})
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		if r.User != nil {
			a.setBotUser(r.User.ID)
		}
	})
	s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { a.messageCreate(ctx, m) })
	s.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) {
		resp := a.interaction(ctx, i.Interaction)
		if err := s.InteractionRespond(i.Interaction, resp, discordgo.WithContext(ctx)); err != nil {
			a.log.ErrorContext(ctx, "discord interaction response failed", "interaction_id", i.ID, "error", err)
		}
	})
	a.wg.Go(func() { a.runGateway(ctx, disconnected) })
}

// runGateway holds the gateway session while this replica has the leader
// lock (Discord allows one session per shard): it takes the lock, and
// takes it again after losing it, until ctx ends or Discord refuses the
// session for good.
func (a *Adapter) runGateway(ctx context.Context, disconnected <-chan struct{}) {
	key := "discord-gateway:" + a.cfg.ApplicationID + ":0"
	for ctx.Err() == nil {
		a.setStandby(true)
		lease := engine.AcquireLock(ctx, a.locker, key, 5*time.Second, a.log)
		a.setStandby(false)
		if lease == nil {
			return
		}
		fatal := a.holdGateway(lease.Context(), disconnected)
		lease.Release()
		if fatal || ctx.Err() != nil {
			return
		}
		a.log.WarnContext(ctx, "discord: leader lock lost; another replica holds the gateway", "cause", context.Cause(lease.Context()))
		a.gw.mu.Lock()
		a.gw.up = false
		a.gw.mu.Unlock()
	}
}

func (a *Adapter) setStandby(on bool) {
	a.gw.mu.Lock()
	a.gw.standby = on
	a.gw.mu.Unlock()
}

// holdGateway connects and reconnects until ctx (the lease) ends; it
// reports true when Discord closed the session for good.
func (a *Adapter) holdGateway(ctx context.Context, disconnected <-chan struct{}) bool {
	backoff := time.Second
	for ctx.Err() == nil {
		err := a.api.Open()
		if code, fatal := fatalClose(err); fatal {
			a.gw.mu.Lock()
			a.gw.up = false
			a.gw.failed = fmt.Errorf("discord closed the gateway with code %d (%s); not reconnecting", code, fatalCloseCodes[code])
			a.gw.mu.Unlock()
			// An alert: the bot stays up for the other platforms, but Discord
			// will not work until the configuration is fixed.
			a.log.ErrorContext(ctx, "ALERT discord gateway failed", "close_code", code, "reason", fatalCloseCodes[code])
			a.report(ctx, engine.StatusFailed, a.gw.failed.Error())
			return true
		}
		if err != nil && !errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			a.log.WarnContext(ctx, "discord gateway: cannot connect; retrying", "error", err, "retry_in_ms", backoff.Milliseconds())
			if !engine.Sleep(ctx, backoff) {
				return false
			}
			backoff = min(backoff*2, 2*time.Minute)
			continue
		}
		backoff = time.Second
		a.gw.mu.Lock()
		a.gw.up = true
		a.gw.mu.Unlock()
		a.log.InfoContext(ctx, "discord gateway connected")
		a.report(ctx, engine.StatusConnected, "")
		select {
		case <-ctx.Done():
			_ = a.api.Close()
			return false
		case <-disconnected:
			a.gw.mu.Lock()
			a.gw.up = false
			a.gw.mu.Unlock()
			a.log.WarnContext(ctx, "discord gateway disconnected; reconnecting")
			a.report(ctx, engine.StatusReconnecting, "the gateway connection dropped")
		}
	}
	return false
}

// report records the gateway's state for the console.
func (a *Adapter) report(ctx context.Context, state, detail string) {
	if a.store == nil {
		return
	}
	if err := a.store.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformDiscord, State: state, Detail: detail}); err != nil {
		a.log.WarnContext(ctx, "discord: record connection status", "error", err)
	}
}

// fatalClose reports whether err is a gateway close with a fatal code.
func fatalClose(err error) (int, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		_, fatal := fatalCloseCodes[ce.Code]
		return ce.Code, fatal
	}
	return 0, false
}

// Ready reports whether the adapter can receive: in gateway mode, whether
// the session is up (and why not when it failed for good).
func (a *Adapter) Ready() error {
	if a.cfg.Mode != ModeGateway {
		return nil
	}
	a.gw.mu.Lock()
	defer a.gw.mu.Unlock()
	switch {
	case a.gw.failed != nil:
		return engine.WrapError(engine.EUNAVAILABLE, a.gw.failed, "%v", a.gw.failed)
	case !a.gw.up && !a.gw.standby:
		return engine.Errorf(engine.EUNAVAILABLE, "discord gateway is not connected")
	}
	return nil
}

func (a *Adapter) setBotUser(id string) {
	a.mu.Lock()
	a.botUserID = id
	a.mu.Unlock()
}

func (a *Adapter) botUser() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.botUserID
}

// messageCreate stores a message addressed to the bot: a DM, or one that
// mentions it (or any message in a channel whose trigger is "all"). The
// answer replies to it in the channel.
func (a *Adapter) messageCreate(ctx context.Context, m *discordgo.MessageCreate) {
	bot := a.botUser()
	if m.Message == nil || m.ID == "" || m.ChannelID == "" || m.Author == nil || m.Author.ID == "" || m.Author.Bot || m.Author.ID == bot || m.Content == "" {
		return
	}
	dm := m.GuildID == ""
	mentioned := bot != "" && (strings.Contains(m.Content, "<@"+bot+">") || strings.Contains(m.Content, "<@!"+bot+">"))
	if !dm && !mentioned {
		all, err := a.store.ListAssistants(ctx)
		if err != nil || engine.TriggerFor(all, engine.Channel{Platform: engine.PlatformDiscord, ID: m.ChannelID}) != engine.TriggerAll {
			return
		}
	}
	text := m.Content
	if bot != "" {
		text = strings.NewReplacer("<@"+bot+">", "", "<@!"+bot+">", "").Replace(text)
	}
	name := m.Author.GlobalName
	if m.Member != nil && m.Member.Nick != "" {
		name = m.Member.Nick
	}
	if name == "" {
		name = m.Author.Username
	}
	p := payload{
		Message: engine.Message{
			ID: m.ID,
			Thread: engine.Thread{
				Channel: engine.Channel{Platform: engine.PlatformDiscord, ID: m.ChannelID, DM: dm},
				ID:      "u:" + m.Author.ID,
			},
			User: engine.ChatUser{ID: m.Author.ID, Name: name}, Text: strings.TrimSpace(text), ReceivedAt: a.now(),
		},
		Discord: meta{ReplyTo: m.ID, ReceivedAt: a.now()},
	}
	raw, err := json.Marshal(p)
	if err == nil {
		_, err = a.store.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformDiscord, EventID: m.ID, ThreadKey: p.Thread.Key(), Payload: raw})
	}
	if err != nil {
		// The gateway does not deliver a message twice: say so in the channel.
		a.log.ErrorContext(ctx, "discord message not stored", "message_id", m.ID, "error", err)
		_, _ = a.api.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{
			Content:         "Sorry, I could not take your question just now (our database is unavailable). Please ask again in a minute.",
			Reference:       &discordgo.MessageReference{MessageID: m.ID, ChannelID: m.ChannelID},
			AllowedMentions: noMentions,
		}, discordgo.WithContext(ctx))
	}
}
