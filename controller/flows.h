/* flows: builds the controller's complete desired flow set (southbound.h)
 * from the topology and the current plan. */
#ifndef ET_FLOWS_H
#define ET_FLOWS_H 1

#include "southbound.h"

#endif /* ET_FLOWS_H */
