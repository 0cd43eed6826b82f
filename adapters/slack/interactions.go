package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/engine"
)

// Feedback buttons: the action id says up or down, the value is the
// answer's trace id.
const (
	actionFeedbackUp   = "convosphere_feedback_up"
	actionFeedbackDown = "convosphere_feedback_down"
)

func (a *Adapter) serveInteractions(w http.ResponseWriter, r *http.Request) {
	body, ok := a.readVerified(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "expected a form-encoded body", http.StatusBadRequest)
		return
	}
	if form.Get("ssl_check") == "1" {
		// Slack's certificate check: answered, and nothing else in the
		// body is looked at.
		w.WriteHeader(http.StatusOK)
		return
	}
	raw := form.Get("payload")
	if raw == "" {
		http.Error(w, "no payload", http.StatusBadRequest)
		return
	}
	if err := a.interaction(r.Context(), []byte(raw)); err != nil {
		a.log.ErrorContext(r.Context(), "slack interaction not recorded", "error", err)
		http.Error(w, "not recorded, retry", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// interaction handles an interactivity payload (HTTP or Socket Mode):
// feedback buttons are recorded against the answer's trace, and Approve
// and Reject buttons decide a tool approval (before the interaction is
// acknowledged; a refusal is told to the clicker alone). It returns an
// error only when recording feedback failed.
func (a *Adapter) interaction(ctx context.Context, raw []byte) error {
	var cb slack.InteractionCallback
	if err := json.Unmarshal(raw, &cb); err != nil {
		a.log.WarnContext(ctx, "slack interaction ignored: cannot decode it", "error", err)
		return nil
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	for _, act := range cb.ActionCallback.BlockActions {
		var rating engine.Rating
		switch act.ActionID {
		case actionApprove, actionReject:
			a.decide(ctx, &cb, act.Value, act.ActionID == actionApprove)
			continue
		case actionFeedbackUp:
			rating = engine.RatingUp
		case actionFeedbackDown:
			rating = engine.RatingDown
		default:
			continue
		}
		f := &engine.Feedback{TraceID: strings.TrimSpace(act.Value), Platform: engine.PlatformSlack, UserID: cb.User.ID, Rating: rating}
		err := a.store.SaveFeedback(ctx, f)
		switch {
		case engine.IsNotFound(err) || engine.ErrorCode(err) == engine.EINVALID:
			a.log.WarnContext(ctx, "slack feedback ignored", "trace_id", f.TraceID, "error", err)
			continue
		case err != nil:
			return err
		}
		a.log.InfoContext(ctx, "slack feedback recorded", "trace_id", f.TraceID, "rating", int(rating))
		if cb.Channel.ID != "" && cb.User.ID != "" {
			channel, user := cb.Channel.ID, cb.User.ID
			thread := cb.Message.ThreadTimestamp
			a.wg.Go(func() { a.thankForFeedback(context.WithoutCancel(ctx), channel, thread, user, rating) })
		}
	}
	return nil
}

// thankForFeedback tells the user, and only them, that their rating was
// recorded.
func (a *Adapter) thankForFeedback(ctx context.Context, channel, thread, user string, rating engine.Rating) {
	text := "Thanks! Your feedback was recorded."
	if rating == engine.RatingDown {
		text = "Thanks for telling us. Your feedback was recorded and helps improve the answers."
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	err := a.call(ctx, "chat.postEphemeral", channel, func(ctx context.Context) error {
		_, err := a.api.PostEphemeralContext(ctx, channel, user, opts...)
		return err
	})
	if err != nil {
		a.log.WarnContext(ctx, "slack feedback acknowledgement not posted", "error", err)
	}
}
