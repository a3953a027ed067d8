module ignite/testbed/pause

go 1.21
