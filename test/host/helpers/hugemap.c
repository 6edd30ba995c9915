/* Maps anonymous hugepages the way DPDK's --in-memory mode does, touches every page, and
 * reports "ok" or the mmap errno. Usage: hugemap <bytes> [2M|1G] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

int main(int argc, char **argv) {
  if (argc < 2) return 64;
  size_t bytes = strtoull(argv[1], NULL, 10);
  int shift = (argc > 2 && strcmp(argv[2], "1G") == 0) ? 30 : 21;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (shift << MAP_HUGE_SHIFT), -1, 0);
  if (p == MAP_FAILED) {
    printf("mmap %s\n", errno == ENOMEM ? "ENOMEM" : strerror(errno));
    return 2;
  }
  memset(p, 1, bytes);
  printf("ok\n");
  return 0;
}
