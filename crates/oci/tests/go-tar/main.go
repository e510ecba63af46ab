// The differential oracle of crates/oci/tests/go_oracle.rs: archives a directory as
// fluxcd/pkg/tar.Tar does for `flux push artifact` (filepath.WalkDir, tar.FileInfoHeader,
// owner and times zeroed, names relative to the root, regular files and directories only),
// with Go's own archive/tar and compress/gzip. Usage: go-tar DIR OUT.tar OUT.tar.gz
package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

func archive(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if t := d.Type(); !t.IsRegular() && !t.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.ModTime, h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func main() {
	dir, err := filepath.Abs(os.Args[1])
	if err != nil {
		panic(err)
	}
	plain, err := os.Create(os.Args[2])
	if err != nil {
		panic(err)
	}
	if err := archive(dir, plain); err != nil {
		panic(err)
	}
	plain.Close()
	gz, err := os.Create(os.Args[3])
	if err != nil {
		panic(err)
	}
	zw := gzip.NewWriter(gz)
	if err := archive(dir, zw); err != nil {
		panic(err)
	}
	zw.Close()
	gz.Close()
}
