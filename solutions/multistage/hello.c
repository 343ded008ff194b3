/* The multi-stage lab's program: greets its first argument, or "multi-stage". */
#include <stdio.h>

int main(int argc, char *argv[]) {
    const char *name = argc > 1 ? argv[1] : "multi-stage";
    printf("Hello, %s! (a static C program)\n", name);
    return 0;
}
