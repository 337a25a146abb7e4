package who

import (
	"context"
	"strings"
	"testing"
)

func TestCleanKeepsNamesAndDefusesTheRest(t *testing.T) {
	for in, want := range map[string]string{
		"alice@bastion-1":           "alice@bastion-1",
		"  bob  ":                   "bob",
		"eve\n{\"level\":\"info\"}": "eve?{\"level\":\"info\"}",
		"<!channel> *bold*":         "?!channel? ?bold?",
		"":                          "",
		strings.Repeat("x", 100):    strings.Repeat("x", MaxLen),
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromDefaultsToUnknown(t *testing.T) {
	if got := From(context.Background()); got != Unknown {
		t.Errorf("From(empty) = %q", got)
	}
	if got := From(With(context.Background(), "alice at 10.0.0.1:5555")); got != "alice at 10.0.0.1:5555" {
		t.Errorf("From = %q", got)
	}
}
