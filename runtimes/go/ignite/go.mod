module ignite

go 1.26
