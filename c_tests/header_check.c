/* The generated header must compile alone as strict C (-std=c99 -pedantic). */
#include "rssl.h"

int rssl_header_check(void);

int rssl_header_check(void)
{
    return RSSL_OK;
}
