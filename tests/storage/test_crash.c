/* SPDX-License-Identifier: MIT */
/* Crash and fault tests. */
#include <criterion/criterion.h>

Test(crash, placeholder_builds)
{
    cr_assert(1);
}
