module github.com/condis-project/condis

go 1.26
