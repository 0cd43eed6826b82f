package engine_test

import (
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// The in-process implementations pass the suites that the Redis ones in
// store/redis pass; "replicas" share the one instance.

func TestLocalLocker(t *testing.T) {
	l := &engine.LocalLocker{}
	enginetest.RunLocker(t, func(testing.TB) engine.Locker { return l })
}

func TestLocalRateLimiter(t *testing.T) {
	l := &engine.LocalRateLimiter{}
	enginetest.RunRateLimiter(t, func(testing.TB) engine.RateLimiter { return l })
}

func TestLocalNotifier(t *testing.T) {
	n := &engine.LocalNotifier{}
	enginetest.RunNotifier(t, func(testing.TB) engine.Notifier { return n })
}
