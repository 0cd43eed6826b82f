package extract

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// The ZIP reader already refuses entries that inflate past their declared
// size, so the budget is a second line of defence that no archive built
// for a test can reach; it is checked here on its own.
func TestBudgetReader(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		reads   int // parts of data read against one budget
		budget  int64
		wantErr error
		left    int64
	}{
		{"under", "abc", 1, 10, nil, 7},
		{"exactly at the limit", "abcd", 1, 4, nil, 0},
		{"over", "abcde", 1, 4, errBudget, 0},
		{"shared across parts", "abc", 2, 5, errBudget, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &budget{left: tt.budget}
			var err error
			for range tt.reads {
				if _, err = io.ReadAll(budgetReader{r: strings.NewReader(tt.data), b: b}); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.wantErr) || err == nil && b.left != tt.left {
				t.Errorf("err %v left %d; want %v left %d", err, b.left, tt.wantErr, tt.left)
			}
		})
	}
}

func TestZipEntryCountFromDirectoryEnd(t *testing.T) {
	// End-of-central-directory record declaring 7 entries, after a comment-free archive body.
	eocd := append([]byte("PK\x05\x06"), 0, 0, 0, 0, 7, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	n, ok := zipEntryCount(append(bytes.Repeat([]byte{1}, 100), eocd...))
	if !ok || n != 7 {
		t.Errorf("zipEntryCount = %d, %v; want 7", n, ok)
	}
	var zip64 bytes.Buffer // over 65535 entries: a ZIP64 directory end
	zw := zip.NewWriter(&zip64)
	for i := range 70_000 {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: "f" + strconv.Itoa(i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if n, ok := zipEntryCount(zip64.Bytes()); !ok || n != 70_000 {
		t.Errorf("zipEntryCount(ZIP64) = %d, %v; want 70000", n, ok)
	}
	if _, ok := zipEntryCount([]byte("PK\x03\x04 no directory end")); ok {
		t.Error("zipEntryCount found a count in an archive without a directory end")
	}
}
