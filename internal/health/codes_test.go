package health

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// Every Code constant declared in this package is in Codes (metrics create
// a series per code at start-up; a code missing there would appear only
// after its first use).
func TestCodesListsEveryCode(t *testing.T) {
	decl := regexp.MustCompile(`(?m)^\s*(?:const\s+)?Code[A-Za-z]+\s+Code\s+=\s+"([^"]+)"`)
	files := []string{"gate.go", "quorum.go", "blast.go"}
	found := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			found++
			if !slices.Contains(Codes, Code(m[1])) {
				t.Errorf("%s declares code %q, not in Codes", f, m[1])
			}
		}
	}
	if found != len(Codes) {
		t.Errorf("%d codes declared in %v, %d in Codes", found, files, len(Codes))
	}
}
