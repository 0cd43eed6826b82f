package engine

import (
	"strings"
	"testing"
)

func TestFeedbackValidate(t *testing.T) {
	ok := Feedback{TraceID: "tr1", Platform: PlatformSlack, UserID: "U1", Rating: RatingUp}
	with := func(edit func(f *Feedback)) Feedback {
		f := ok
		edit(&f)
		return f
	}
	longest := strings.Repeat("é", MaxFeedbackComment/2) // 2000 bytes
	tests := []normalizeTest[Feedback]{
		{"thumbs up", ok, ok, ""},
		{"thumbs down with a comment", with(func(f *Feedback) { f.Rating, f.Comment = RatingDown, "Wrong version." }),
			with(func(f *Feedback) { f.Rating, f.Comment = RatingDown, "Wrong version." }), ""},
		{"trims the comment", with(func(f *Feedback) { f.Comment = "  outdated \n" }), with(func(f *Feedback) { f.Comment = "outdated" }), ""},
		{"console user", with(func(f *Feedback) { f.Platform, f.UserID = PlatformConsole, "user-1" }),
			with(func(f *Feedback) { f.Platform, f.UserID = PlatformConsole, "user-1" }), ""},
		{"longest comment", with(func(f *Feedback) { f.Comment = longest }), with(func(f *Feedback) { f.Comment = longest }), ""},
		{"comment too long", with(func(f *Feedback) { f.Comment = longest + "x" }), Feedback{}, EINVALID},
		{"comment not UTF-8", with(func(f *Feedback) { f.Comment = "bad \xff byte" }), Feedback{}, EINVALID},
		{"no trace", with(func(f *Feedback) { f.TraceID = "" }), Feedback{}, EINVALID},
		{"blank trace", with(func(f *Feedback) { f.TraceID = " " }), Feedback{}, EINVALID},
		{"no platform", with(func(f *Feedback) { f.Platform = "" }), Feedback{}, EINVALID},
		{"no user", with(func(f *Feedback) { f.UserID = "" }), Feedback{}, EINVALID},
		{"no rating", with(func(f *Feedback) { f.Rating = 0 }), Feedback{}, EINVALID},
		{"rating out of range", with(func(f *Feedback) { f.Rating = 5 }), Feedback{}, EINVALID},
		{"rating below range", with(func(f *Feedback) { f.Rating = -2 }), Feedback{}, EINVALID},
	}
	runNormalizeTests(t, tests, (*Feedback).Validate, nil)
}

func TestFeedbackNormalize(t *testing.T) {
	tests := []normalizeTest[Feedback]{
		{"new, created now", Feedback{TraceID: "tr1", Platform: PlatformSlack, UserID: "U1", Rating: RatingUp},
			Feedback{TraceID: "tr1", Platform: PlatformSlack, UserID: "U1", Rating: RatingUp, CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"preset creation time, updated now", Feedback{TraceID: "tr1", Platform: PlatformSlack, UserID: "U1", Rating: RatingDown,
			Comment: " no ", CreatedAt: earlier, UpdatedAt: earlier},
			Feedback{TraceID: "tr1", Platform: PlatformSlack, UserID: "U1", Rating: RatingDown, Comment: "no",
				CreatedAt: storedEarlier, UpdatedAt: storedNow}, ""},
		{"invalid", Feedback{TraceID: "tr1", Platform: PlatformSlack, UserID: "U1"}, Feedback{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(f *Feedback) error { return f.Normalize(testNow) }, nil)
}
