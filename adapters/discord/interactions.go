package discord

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// Slash commands and their options.
const (
	commandAsk       = "ask"
	commandAssistant = "assistant"
	optionQuestion   = "question"
	optionAssistant  = "assistant"
	optionName       = "name"
)

// choiceKey is the preference holding the assistant a user chose for a
// channel with /assistant.
func choiceKey(channelID string) string { return "assistant:" + channelID }

// Feedback buttons: custom_id "feedback:up:<trace id>" or "feedback:down:…".
const feedbackPrefix = "feedback:"

// meta is what the replier needs beyond engine.Message, stored with it.
type meta struct {
	ApplicationID string    `json:"application_id,omitempty"`
	Token         string    `json:"token,omitempty"`    // the interaction token: 15 minutes of webhook edits
	ReplyTo       string    `json:"reply_to,omitempty"` // a gateway message: the answer replies to it
	ReceivedAt    time.Time `json:"received_at"`
}

// payload is an inbox event's payload: the message at the top level (as
// the workers read it) and the Discord details.
type payload struct {
	engine.Message
	Discord meta `json:"discord"`
}

// Handler serves POST /discord/interactions.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /discord/interactions", a.serveInteractions)
	return mux
}

// verify checks Discord's Ed25519 signature of timestamp + body and that
// the timestamp is within five minutes of now, either way.
func verify(key ed25519.PublicKey, h http.Header, body []byte, now time.Time) error {
	sig, err := hex.DecodeString(h.Get("X-Signature-Ed25519"))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("missing or malformed X-Signature-Ed25519")
	}
	ts := h.Get("X-Signature-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("missing or malformed X-Signature-Timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("timestamp %s is more than %s away from now", ts, maxSkew)
	}
	msg := make([]byte, 0, len(ts)+len(body))
	msg = append(append(msg, ts...), body...)
	if !ed25519.Verify(key, msg, sig) {
		return errors.New("invalid signature")
	}
	return nil
}

func (a *Adapter) serveInteractions(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	if err := verify(a.key, r.Header, body, a.now()); err != nil {
		// Discord sends bad signatures on purpose and drops endpoints that
		// accept them: 401 before anything in the body is looked at.
		a.log.WarnContext(r.Context(), "discord request rejected", "reason", err.Error())
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	var in discordgo.Interaction
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "invalid interaction", http.StatusBadRequest)
		return
	}
	resp := a.interaction(r.Context(), &in)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// interaction answers one interaction; for /ask it stores the question
// and defers the answer.
func (a *Adapter) interaction(ctx context.Context, in *discordgo.Interaction) *discordgo.InteractionResponse {
	switch in.Type {
	case discordgo.InteractionPing:
		return &discordgo.InteractionResponse{Type: discordgo.InteractionResponsePong}
	case discordgo.InteractionApplicationCommand:
		data := in.ApplicationCommandData()
		switch data.Name {
		case commandAsk:
			return a.ask(ctx, in, data)
		case commandAssistant:
			return a.chooseAssistant(ctx, in, data)
		}
		return ephemeral(fmt.Sprintf("I do not know the command /%s: use /ask.", data.Name))
	case discordgo.InteractionApplicationCommandAutocomplete:
		return a.autocomplete(ctx, in)
	case discordgo.InteractionMessageComponent:
		return a.component(ctx, in)
	}
	return ephemeral("This kind of interaction is not supported.")
}

func ephemeral(text string) *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{
			Content: text, Flags: discordgo.MessageFlagsEphemeral,
			AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
		},
	}
}

// ask stores the question of an /ask command and defers the answer (a
// "thinking…" message the worker edits). A question that cannot be stored
// gets the reason at once: Discord does not deliver an interaction twice.
func (a *Adapter) ask(ctx context.Context, in *discordgo.Interaction, data discordgo.ApplicationCommandInteractionData) *discordgo.InteractionResponse {
	var question, assistant string
	for _, o := range data.Options {
		switch nameOf(o) {
		case optionQuestion:
			question = strings.TrimSpace(optionString(o))
		case optionAssistant:
			assistant = strings.TrimSpace(optionString(o))
		}
	}
	if question == "" {
		return ephemeral("Write your question in the question option: /ask question: How do I deploy?")
	}
	user := userOf(in)
	if in.ID == "" || in.ChannelID == "" || user.ID == "" {
		return ephemeral("This question came without the ids needed to answer it: please ask again.")
	}
	if assistant == "" {
		// The assistant the user chose here with /assistant, if any.
		if p, err := a.store.Preference(ctx, engine.PlatformDiscord, user.ID, choiceKey(in.ChannelID)); err == nil {
			assistant = p.Value
		}
	}
	thread := "u:" + user.ID // each user's questions in a channel are one conversation
	if assistant != "" {
		thread += "/" + strings.ToLower(assistant)
	}
	p := payload{
		Message: engine.Message{
			ID: in.ID,
			Thread: engine.Thread{
				Channel: engine.Channel{Platform: engine.PlatformDiscord, ID: in.ChannelID, DM: in.GuildID == ""},
				ID:      thread,
			},
			User: user, Text: question, Assistant: assistant, ReceivedAt: a.now(),
		},
		Discord: meta{ApplicationID: in.AppID, Token: in.Token, ReceivedAt: a.now()},
	}
	raw, err := json.Marshal(p)
	if err == nil {
		_, err = a.store.Enqueue(ctx, &engine.InboxEvent{
			Platform: engine.PlatformDiscord, EventID: in.ID, ThreadKey: p.Thread.Key(), Payload: raw,
		})
	}
	if err != nil {
		a.log.ErrorContext(ctx, "discord interaction not stored", "interaction_id", in.ID, "error", err)
		return ephemeral("Sorry, I could not take your question just now (our database is unavailable). Please ask again in a minute.")
	}
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}
}

// nameOf is an option's name, "" for a null option.
func nameOf(o *discordgo.ApplicationCommandInteractionDataOption) string {
	if o == nil {
		return ""
	}
	return o.Name
}

// optionString is an option's value if it is a string, else "": unlike
// discordgo's StringValue, it does not panic on a value of another type.
func optionString(o *discordgo.ApplicationCommandInteractionDataOption) string {
	s, _ := o.Value.(string)
	return s
}

// userOf is who sent an interaction: the member in a server, the user in a DM.
func userOf(in *discordgo.Interaction) engine.ChatUser {
	var u *discordgo.User
	nick := ""
	if in.Member != nil {
		u, nick = in.Member.User, in.Member.Nick
	}
	if u == nil {
		u = in.User
	}
	if u == nil {
		return engine.ChatUser{}
	}
	name := nick
	if name == "" {
		name = u.GlobalName
	}
	if name == "" {
		name = u.Username
	}
	return engine.ChatUser{ID: u.ID, Name: name}
}

// channelAssistants lists the assistants that can answer in a channel:
// those bound to it (or to every channel, or every DM), else all.
func (a *Adapter) channelAssistants(ctx context.Context, in *discordgo.Interaction) ([]*engine.Assistant, error) {
	all, err := a.store.ListAssistants(ctx)
	if err != nil {
		return nil, err
	}
	wildcard := engine.ChannelAnywhere
	if in.GuildID == "" {
		wildcard = engine.ChannelAnyDM
	}
	var bound []*engine.Assistant
	for _, as := range all {
		for _, b := range as.Bindings {
			if b.Platform == engine.PlatformDiscord && (b.ChannelID == in.ChannelID || b.ChannelID == wildcard) {
				bound = append(bound, as)
				break
			}
		}
	}
	if len(bound) == 0 {
		bound = all
	}
	sort.Slice(bound, func(i, j int) bool { return bound[i].Name < bound[j].Name })
	return bound, nil
}

// chooseAssistant answers /assistant: with a name, it remembers that
// assistant for the user's /ask questions in this channel ("default"
// forgets the choice); without, it lists who can answer here.
func (a *Adapter) chooseAssistant(ctx context.Context, in *discordgo.Interaction, data discordgo.ApplicationCommandInteractionData) *discordgo.InteractionResponse {
	list, err := a.channelAssistants(ctx, in)
	if err != nil {
		return ephemeral("The assistants could not be loaded; please try again in a minute.")
	}
	if len(list) == 0 {
		return ephemeral("No assistant exists yet: an admin has to create one in the console.")
	}
	name := ""
	for _, o := range data.Options {
		if nameOf(o) == optionName {
			name = strings.TrimSpace(optionString(o))
		}
	}
	user := userOf(in)
	if name == "" {
		return a.listAssistants(ctx, in, list, user)
	}
	if user.ID == "" {
		// Discord always names the member or user; a payload without one
		// cannot say whose choice this is.
		return ephemeral("Discord did not say who ran this command, so the choice cannot be remembered; please run it again.")
	}
	pref := &engine.Preference{Platform: engine.PlatformDiscord, UserID: user.ID, Key: choiceKey(in.ChannelID)}
	reply := "Your /ask questions in this channel go to the channel's assistant again."
	if !strings.EqualFold(name, "default") {
		var chosen *engine.Assistant
		for _, as := range list {
			if strings.EqualFold(as.Name, name) {
				chosen = as
			}
		}
		if chosen == nil {
			return ephemeral(fmt.Sprintf("There is no assistant named %q here: run /assistant without a name to see the list.", name))
		}
		pref.Value = chosen.Name
		reply = fmt.Sprintf("Your /ask questions in this channel now go to **%s**. `/assistant name:default` goes back to the channel's assistant.", chosen.Name)
	}
	if err := a.store.SetPreference(ctx, pref); err != nil {
		a.log.ErrorContext(ctx, "discord assistant choice not stored", "error", err)
		return ephemeral("Your choice could not be saved just now; please try again in a minute.")
	}
	return ephemeral(reply)
}

// listAssistants says who can answer here, and which one the user chose.
func (a *Adapter) listAssistants(ctx context.Context, in *discordgo.Interaction, list []*engine.Assistant, user engine.ChatUser) *discordgo.InteractionResponse {
	chosen := ""
	if p, err := a.store.Preference(ctx, engine.PlatformDiscord, user.ID, choiceKey(in.ChannelID)); err == nil {
		chosen = p.Value
	}
	var sb strings.Builder
	sb.WriteString("Assistants you can ask here:\n")
	for _, as := range list {
		fmt.Fprintf(&sb, "- **%s**", as.Name)
		if as.IsDefault {
			sb.WriteString(" (default)")
		}
		if strings.EqualFold(as.Name, chosen) {
			sb.WriteString(" ← your choice")
		}
		if as.Description != "" {
			sb.WriteString(": " + as.Description)
		}
		sb.WriteByte('\n')
	}
	sb.WriteString("Choose one with `/assistant name:NAME`, or for one question with `/ask assistant:NAME question:…`.")
	return ephemeral(textsplit.Truncate(sb.String(), MessageLimit, "…"))
}

// autocomplete offers the assistant names that start with what was typed.
func (a *Adapter) autocomplete(ctx context.Context, in *discordgo.Interaction) *discordgo.InteractionResponse {
	typed := ""
	for _, o := range in.ApplicationCommandData().Options {
		if n := nameOf(o); (n == optionAssistant || n == optionName) && o.Focused {
			typed = strings.ToLower(optionString(o))
		}
	}
	list, _ := a.channelAssistants(ctx, in)
	choices := []*discordgo.ApplicationCommandOptionChoice{}
	for _, as := range list {
		if strings.HasPrefix(strings.ToLower(as.Name), typed) && len(choices) < 25 {
			choices = append(choices, &discordgo.ApplicationCommandOptionChoice{Name: as.Name, Value: as.Name})
		}
	}
	return &discordgo.InteractionResponse{Type: discordgo.InteractionApplicationCommandAutocompleteResult,
		Data: &discordgo.InteractionResponseData{Choices: choices}}
}

// component handles a button: approve or reject a tool approval, or
// record feedback against the answer's trace.
func (a *Adapter) component(ctx context.Context, in *discordgo.Interaction) *discordgo.InteractionResponse {
	id := in.MessageComponentData().CustomID
	if approval, approve, ok := parseApproval(id); ok {
		return a.decide(ctx, in, approval, approve)
	}
	rest, ok := strings.CutPrefix(id, feedbackPrefix)
	if !ok {
		return ephemeral("This button is not supported.")
	}
	dir, trace, _ := strings.Cut(rest, ":")
	rating := engine.RatingUp
	if dir == "down" {
		rating = engine.RatingDown
	}
	f := &engine.Feedback{TraceID: trace, Platform: engine.PlatformDiscord, UserID: userOf(in).ID, Rating: rating}
	switch err := a.store.SaveFeedback(ctx, f); {
	case err == nil:
		if rating == engine.RatingDown {
			return ephemeral("Thanks for telling us. Your feedback was recorded and helps improve the answers.")
		}
		return ephemeral("Thanks! Your feedback was recorded.")
	case engine.IsNotFound(err) || engine.ErrorCode(err) == engine.EINVALID:
		return ephemeral("This answer can no longer be rated.")
	default:
		a.log.ErrorContext(ctx, "discord feedback not recorded", "error", err)
		return ephemeral("Your feedback could not be recorded just now; please try again in a minute.")
	}
}
