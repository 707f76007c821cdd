/* SPDX-License-Identifier: MIT */
/* transport/: authenticated peers over real sockets (suite io). Tests follow. */
#include <criterion/criterion.h>
