// Entry point placeholder; replaced by the daemon in this session.
int main() { return 2; }
