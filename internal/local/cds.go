package local

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Class-data sharing: every local JVM loads the same few thousand Kafka and
// Scala classes, and on a small machine running several fleets at once that
// parsing is a large share of each JVM's start-up CPU. The first short-lived
// tool JVM that finds no archive dumps the classes it loaded into one at
// exit (-XX:ArchiveClassesAtExit, a dynamic archive over the JDK's own
// default one); every later JVM of the distribution maps it. A missing,
// half-written or foreign archive costs nothing: each writer writes its own
// temporary file and renames it into place only when the tool succeeded,
// and a JVM that cannot use an archive (another JDK build) ignores it.

// cdsFile is the distribution's archive.
func cdsFile(d Dist) string { return filepath.Join(d.Home, "kafka-classes.jsa") }

var cdsSeq atomic.Int64

// cdsArgs are the JVM flags that use d's archive, or, with dump, that write
// one at exit when there is none yet; tmp is then the file to move into
// place (cdsKeep) once the JVM succeeded.
func cdsArgs(d Dist, dump bool) (args []string, tmp string) {
	if d.Home == "" {
		return nil, ""
	}
	f := cdsFile(d)
	if _, err := os.Stat(f); err == nil {
		return []string{"-XX:SharedArchiveFile=" + f}, ""
	}
	if !dump {
		return nil, ""
	}
	tmp = fmt.Sprintf("%s.%d-%d.tmp", f, os.Getpid(), cdsSeq.Add(1))
	return []string{"-XX:ArchiveClassesAtExit=" + tmp}, tmp
}

// cdsKeep moves a dumped archive into place (the first one wins; a
// distribution directory that cannot be written keeps none).
func cdsKeep(d Dist, tmp string) {
	if tmp == "" {
		return
	}
	defer os.Remove(tmp)
	if st, err := os.Stat(tmp); err != nil || st.Size() == 0 {
		return
	}
	if _, err := os.Stat(cdsFile(d)); err == nil {
		return
	}
	_ = os.Rename(tmp, cdsFile(d))
}
