package local

import (
	"os"
	"strings"
	"testing"
)

// The first tool JVM dumps an archive into a file of its own; only a
// non-empty dump is moved into place, and from then on every JVM maps it.
func TestClassDataArchiveIsWrittenOnceThenUsed(t *testing.T) {
	d := Dist{Home: t.TempDir()}
	if args, tmp := cdsArgs(d, false); args != nil || tmp != "" {
		t.Fatalf("no archive, not dumping: %v %q", args, tmp)
	}
	args, tmp := cdsArgs(d, true)
	if len(args) != 1 || !strings.HasPrefix(args[0], "-XX:ArchiveClassesAtExit=") || !strings.HasSuffix(tmp, ".tmp") {
		t.Fatalf("dump: %v %q", args, tmp)
	}
	_, tmp2 := cdsArgs(d, true)
	if tmp2 == tmp {
		t.Fatal("two writers share a temporary file")
	}
	cdsKeep(d, tmp) // the JVM wrote nothing: nothing kept
	if _, err := os.Stat(cdsFile(d)); err == nil {
		t.Fatal("an archive was kept that no JVM wrote")
	}
	if err := os.WriteFile(tmp2, []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	cdsKeep(d, tmp2)
	if args, tmp := cdsArgs(d, true); len(args) != 1 || args[0] != "-XX:SharedArchiveFile="+cdsFile(d) || tmp != "" {
		t.Fatalf("with an archive: %v %q", args, tmp)
	}
	if _, err := os.Stat(tmp2); err == nil {
		t.Fatal("the temporary file is left behind")
	}
}
