"""What every onair package may import (it imports none of them): helpers with no domain of their own."""
