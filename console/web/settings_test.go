package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// TestSettingsPage: the platforms' connection status and the API tokens,
// the admin's own apart from everyone else's (with the owner), and the
// empty states.
func TestSettingsPage(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()

	// Empty: no platform reported, no token.
	w := env.get("/settings", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc := mustDoc(t, w.Body.Bytes())
	for _, id := range []string{"platforms-empty", "my-tokens-empty", "other-tokens-empty"} {
		if doc.Find("#"+id+":not([hidden])").Length() != 1 {
			t.Errorf("no empty state #%s", id)
		}
	}
	if doc.Find("#my-tokens[hidden] table tbody").Length() != 1 {
		t.Error("no hidden table for the tokens the page creates")
	}
	if doc.Find(`a[href="/settings"][aria-current=page]`).Length() != 1 {
		t.Error("the Settings link is not marked current")
	}
	if doc.Find("#providers-title").Length() != 1 {
		t.Error("the page has no model providers section")
	}
	form := doc.Find("form#token-form")
	if form.Find("#token-name").Length() != 1 || form.Find("label[for=token-name]").Length() != 1 {
		t.Error("the token form's name field is missing or unlabelled")
	}
	if doc.Find("#token-result button[data-copy=token-value]").Length() != 1 {
		t.Error("no copy button for the new token")
	}
	mustOwnScripts(t, w.Body.Bytes(), "settings.js", "providers.js")

	for _, st := range []*engine.PlatformStatus{
		{Platform: engine.PlatformSlack, State: engine.StatusConnected, Detail: "socket mode"},
		{Platform: engine.PlatformDiscord, State: engine.StatusFailed, Detail: "discord closed the gateway with code 4004 <b>bad</b>"},
	} {
		if err := env.store.SetPlatformStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	mine := env.MustToken(admin.user)
	bob := env.MustUser("bob", engine.RoleEditor)
	env.MustToken(bob)
	if w := env.get("/api/v1/tokens", mine); w.Code != http.StatusOK { // marks it used
		t.Fatal(w.Code)
	}

	doc = mustDoc(t, env.get("/settings", admin).Body.Bytes())
	slack := doc.Find(`tr.platform[data-platform=slack]`)
	if slack.Find(`.badge[data-state=connected]`).Length() != 1 || !strings.Contains(slack.Text(), "socket mode") {
		t.Errorf("slack row %q", slack.Text())
	}
	discord := doc.Find(`tr.platform[data-platform=discord]`)
	if discord.Find(`.badge-warn[data-state=failed]`).Length() != 1 || !strings.Contains(discord.Text(), "<b>bad</b>") {
		t.Errorf("discord row %q", discord.Text())
	}
	myRows := doc.Find("#my-tokens tr.token")
	if myRows.Length() != 1 || !strings.Contains(myRows.Text(), "ada") || strings.Contains(myRows.Text(), "never") {
		t.Errorf("my tokens: %q (want one, used)", myRows.Text())
	}
	otherRows := doc.Find("#other-tokens tr.token")
	if otherRows.Length() != 1 || otherRows.Find(".token-owner").Text() != "bob" || !strings.Contains(otherRows.Text(), "never") {
		t.Errorf("other tokens: %q", otherRows.Text())
	}
	if doc.Find("#my-tokens-empty[hidden]").Length() != 1 || doc.Find("#other-tokens-empty[hidden]").Length() != 1 ||
		doc.Find("#my-tokens[hidden], #other-tokens[hidden]").Length() != 0 {
		t.Error("the empty states show next to tokens")
	}
	if doc.Find("tr.token button[data-revoke]").Length() != 2 {
		t.Error("tokens without a Revoke button")
	}
}

// TestTokensAPI: create (the secret shown once, only its hash stored),
// list with owners and last use, revoke (the token stops working at once).
func TestTokensAPI(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	w := env.sendJSON(http.MethodPost, "/api/v1/tokens", `{"name": "  ci deploys  "}`, admin)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	created := decodeStrict[createTokenResponse](t, w.Body.Bytes())
	if !strings.HasPrefix(created.Secret, "cs_") || created.Token.Name != "ci deploys" || created.Token.UserID != admin.user.ID ||
		created.Token.UserName != "ada" || created.Token.ID == "" {
		t.Fatalf("created %+v", created)
	}
	if strings.Contains(env.logs.String(), created.Secret) {
		t.Fatal("the token reached the log")
	}
	if _, err := env.store.APITokenByHash(ctx, created.Secret); !engine.IsNotFound(err) {
		t.Fatal("the raw token was stored")
	}
	tok := &client{user: admin.user, token: created.Secret}
	w = env.get("/api/v1/tokens", tok)
	list := decodeStrict[tokensResponse](t, w.Body.Bytes())
	if w.Code != http.StatusOK || len(list.Tokens) != 1 || !list.Tokens[0].Current || list.Tokens[0].LastUsedAt.IsZero() {
		t.Fatalf("list with the new token: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), created.Secret) || strings.Contains(w.Body.String(), engine.HashSecret(created.Secret)) {
		t.Fatal("the list shows the token or its hash")
	}

	// Other users' tokens, and the filter.
	bob := env.MustUser("bob", engine.RoleEditor)
	bobTok := env.MustToken(bob)
	list = decodeStrict[tokensResponse](t, env.get("/api/v1/tokens", admin).Body.Bytes())
	if len(list.Tokens) != 2 || list.Tokens[1].UserName != "bob" || list.Tokens[0].Current {
		t.Fatalf("all tokens %+v", list.Tokens)
	}
	list = decodeStrict[tokensResponse](t, env.get("/api/v1/tokens?user_id="+bob.ID, admin).Body.Bytes())
	if len(list.Tokens) != 1 || list.Tokens[0].UserID != bob.ID {
		t.Fatalf("bob's tokens %+v", list.Tokens)
	}

	// Bad names.
	for _, tt := range []struct{ body, want string }{
		{`{"name": ""}`, "Name the token"},
		{`{}`, "Name the token"},
		{`{"name": "` + strings.Repeat("t", 101) + `"}`, "at most 100"},
		{`{"name": "a\u0000b"}`, "control characters"},
		{`{"name": "x", "user_id": "` + bob.ID + `"}`, "Unknown field"},
	} {
		w := env.sendJSON(http.MethodPost, "/api/v1/tokens", tt.body, admin)
		if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %d %q, want 400 %q", tt.body, w.Code, msg, tt.want)
		}
	}

	// Revoke bob's token: it stops working at once.
	if w := env.get("/api/v1/assistants", bobTok); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	bobID := list.Tokens[0].ID
	if w := env.sendJSON(http.MethodDelete, "/api/v1/tokens/"+bobID, "", admin); w.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := env.get("/api/v1/assistants", bobTok); w.Code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", w.Code)
	}
	if w := env.sendJSON(http.MethodDelete, "/api/v1/tokens/"+bobID, "", admin); w.Code != http.StatusNotFound {
		t.Fatalf("revoke twice: %d", w.Code)
	}
	// An admin may revoke the token the request is made with.
	if w := env.sendJSON(http.MethodDelete, "/api/v1/tokens/"+created.Token.ID, "", tok); w.Code != http.StatusNoContent {
		t.Fatalf("revoke own token: %d %s", w.Code, w.Body)
	}
	if w := env.get("/api/v1/tokens", tok); w.Code != http.StatusUnauthorized {
		t.Fatalf("after revoking itself: %d", w.Code)
	}
	doc := mustDoc(t, env.get("/settings", admin).Body.Bytes())
	if n := doc.Find("tr.token").Length(); n != 0 {
		t.Fatalf("%d tokens listed after revoking all", n)
	}
}

// TestSettingsTokenTimes: created and last-used times are shown in UTC.
func TestSettingsTokenTimes(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	at := time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)
	_, hash := engine.NewSecret("cs_")
	tk := &engine.APIToken{UserID: admin.user.ID, Name: "dated", TokenHash: hash}
	if err := env.store.CreateAPIToken(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := env.store.TouchAPIToken(ctx, tk.ID, at); err != nil {
		t.Fatal(err)
	}
	doc := mustDoc(t, env.get("/settings", admin).Body.Bytes())
	row := doc.Find(fmt.Sprintf(`tr.token[data-token-id=%q]`, tk.ID))
	if !strings.Contains(row.Text(), "6 May 2026 07:08 UTC") {
		t.Fatalf("row %q", row.Text())
	}
}
