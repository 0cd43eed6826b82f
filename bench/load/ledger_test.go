package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOrderViolations(t *testing.T) {
	tests := []struct {
		order []int
		want  [][2]int
	}{
		{nil, nil},
		{[]int{0, 1, 2, 3}, nil},
		{[]int{0, 2, 3}, nil}, // a missing answer is not an order violation
		{[]int{1, 0, 2}, [][2]int{{1, 0}}},
		{[]int{0, 3, 1, 2, 4}, [][2]int{{3, 1}, {3, 2}}},
		{[]int{0, 1, 1}, [][2]int{{1, 1}}}, // the same question twice
		{[]int{2, 1, 0}, [][2]int{{2, 1}, {2, 0}}},
	}
	for _, tt := range tests {
		if got := orderViolations(tt.order); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("orderViolations(%v) = %v, want %v", tt.order, got, tt.want)
		}
	}
}

func TestLedgerExactlyOnceAndOrder(t *testing.T) {
	l := newLedger()
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Thread A: three questions answered in order, once each.
	a := []*record{l.add(platSlack, "A0", "a", 0), l.add(platSlack, "A1", "a", 1), l.add(platSlack, "A2", "a", 2)}
	for i, r := range a {
		l.sent(r, at(i*100))
		l.sent(r, at(i*100+50)) // a retry does not move the send time
		l.acked(r, 2*time.Millisecond, true)
		l.message(platSlack, r.ID, at(i*100+10))
		l.shown(platSlack, r.ID, "partial answer", at(i*100+20))
		l.shown(platSlack, r.ID, "whole answer. "+answerEnd, at(i*100+30))
		l.shown(platSlack, r.ID, "edited again. "+answerEnd, at(i*100+40)) // completes once
	}
	// Thread B: the second answer shows before the first, and is posted twice.
	b0, b1 := l.add(platSlack, "B0", "b", 0), l.add(platSlack, "B1", "b", 1)
	l.sent(b0, at(0))
	l.sent(b1, at(5))
	l.acked(b0, time.Millisecond, false)
	l.message(platSlack, "B1", at(10))
	l.message(platSlack, "B0", at(20))
	l.message(platSlack, "B1", at(30))
	l.shown(platSlack, "B1", answerEnd, at(40))
	// Thread C (Discord): the deferred response edited many times is one
	// message; one question never answered.
	c0 := l.add(platDiscord, "C0", "c", 0)
	l.add(platDiscord, "C1", "c", 1)
	l.sent(c0, at(0))
	for i := range 3 {
		l.messageOnce(platDiscord, "C0", at(10+i))
	}
	l.shown(platDiscord, "C0", answerEnd, at(20))
	// A message for an event never sent.
	l.message(platSlack, "unknown", at(50))

	if got := a[1].FirstVisible.Sub(a[1].Sent); got != 10*time.Millisecond {
		t.Errorf("first visible %v after the first delivery, want 10ms", got)
	}
	if got := a[2].Complete.Sub(a[2].Sent); got != 30*time.Millisecond {
		t.Errorf("complete %v after the first delivery, want 30ms (the first call showing the end)", got)
	}
	select {
	case <-a[0].done:
	default:
		t.Error("a completed answer's done channel is open")
	}

	slack := l.summarise(platSlack)
	want := delivery{Events: 5, Answered: 4, ExactlyOne: 4, Missing: 0, Duplicated: 1, Extra: 1, Stray: 1, OrderViolations: 1}
	got := slack
	got.OrderExamples = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("slack summary %+v, want %+v", got, want)
	}
	if len(slack.OrderExamples) != 1 || !strings.Contains(slack.OrderExamples[0], "b: first message of question 0 came after question 1's") {
		t.Errorf("order examples %q", slack.OrderExamples)
	}
	discord := l.summarise(platDiscord)
	if discord.Events != 2 || discord.ExactlyOne != 1 || discord.Missing != 1 || discord.Duplicated != 0 || discord.Answered != 1 {
		t.Errorf("discord summary %+v: want 2 events, 1 with one message, 1 missing", discord)
	}
	all := l.summarise("")
	if all.Events != 7 || all.Stray != 1 || all.OrderViolations != 1 {
		t.Errorf("overall summary %+v", all)
	}
	if b0.AckErrors != 1 || len(b0.Acks) != 0 || len(a[0].Acks) != 1 {
		t.Errorf("acks: B0 %v/%d, A0 %v", b0.Acks, b0.AckErrors, a[0].Acks)
	}
}

func TestLedgerCompletionOrder(t *testing.T) {
	l := newLedger()
	now := time.Now()
	for i := range 3 {
		l.add(platMattermost, string(rune('x'+i)), "t", i)
		l.message(platMattermost, string(rune('x'+i)), now)
	}
	// All first messages in order, but question 2 completes before 1.
	l.shown(platMattermost, "x", answerEnd, now)
	l.shown(platMattermost, "z", answerEnd, now)
	l.shown(platMattermost, "y", answerEnd, now)
	d := l.summarise(platMattermost)
	if d.OrderViolations != 1 || len(d.OrderExamples) != 1 || !strings.Contains(d.OrderExamples[0], "completion of question 1 came after question 2's") {
		t.Errorf("summary %+v: want the completion of 1 after 2 reported", d)
	}
}
