#include <stdio.h>
int main(void) { puts("nnc"); return 0; }
