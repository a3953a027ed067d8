"""What every Ignite process shares and none owns: server, gateway and
launcher may all import it; it imports nothing of theirs."""
