"""Loads a small catalogue of well-known films (facts only). Idempotent: running it again
creates nothing new. With --if-empty it does nothing when any movie exists."""
import datetime

from django.core.management.base import BaseCommand
from django.db import transaction

from core.models import Movie, Person, Role

G, PG, R = Movie.RATED_G, Movie.RATED_PG, Movie.RATED_R

# (first name, last name) -> (born, died or None)
PEOPLE = {
    ("Francis Ford", "Coppola"): ("1939-04-07", None),
    ("Mario", "Puzo"): ("1920-10-15", "1999-07-02"),
    ("Marlon", "Brando"): ("1924-04-03", "2004-07-01"),
    ("Al", "Pacino"): ("1940-04-25", None),
    ("James", "Caan"): ("1940-03-26", "2022-07-06"),
    ("Michael", "Curtiz"): ("1886-12-24", "1962-04-10"),
    ("Julius J.", "Epstein"): ("1909-08-22", "2000-12-30"),
    ("Philip G.", "Epstein"): ("1909-08-22", "1952-02-07"),
    ("Howard", "Koch"): ("1901-12-12", "1995-08-17"),
    ("Humphrey", "Bogart"): ("1899-12-25", "1957-01-14"),
    ("Ingrid", "Bergman"): ("1915-08-29", "1982-08-29"),
    ("Claude", "Rains"): ("1889-11-10", "1967-05-30"),
    ("Steven", "Spielberg"): ("1946-12-18", None),
    ("Peter", "Benchley"): ("1940-05-08", "2006-02-11"),
    ("Carl", "Gottlieb"): ("1938-03-18", None),
    ("Roy", "Scheider"): ("1932-11-10", "2008-02-10"),
    ("Robert", "Shaw"): ("1927-08-09", "1978-08-28"),
    ("Richard", "Dreyfuss"): ("1947-10-29", None),
    ("George", "Lucas"): ("1944-05-14", None),
    ("Mark", "Hamill"): ("1951-09-25", None),
    ("Harrison", "Ford"): ("1942-07-13", None),
    ("Carrie", "Fisher"): ("1956-10-21", "2016-12-27"),
    ("Lawrence", "Kasdan"): ("1949-01-14", None),
    ("Karen", "Allen"): ("1951-10-05", None),
    ("Melissa", "Mathison"): ("1950-06-03", "2015-11-04"),
    ("Henry", "Thomas"): ("1971-09-09", None),
    ("Drew", "Barrymore"): ("1975-02-22", None),
    ("Robert", "Zemeckis"): ("1952-05-14", None),
    ("Bob", "Gale"): ("1951-05-25", None),
    ("Michael J.", "Fox"): ("1961-06-09", None),
    ("Christopher", "Lloyd"): ("1938-10-22", None),
    ("Lea", "Thompson"): ("1961-05-31", None),
    ("John", "Lasseter"): ("1957-01-12", None),
    ("Joss", "Whedon"): ("1964-06-23", None),
    ("Andrew", "Stanton"): ("1965-12-03", None),
    ("Tom", "Hanks"): ("1956-07-09", None),
    ("Tim", "Allen"): ("1953-06-13", None),
    ("Joel", "Coen"): ("1954-11-29", None),
    ("Ethan", "Coen"): ("1957-09-21", None),
    ("Frances", "McDormand"): ("1957-06-23", None),
    ("William H.", "Macy"): ("1950-03-13", None),
    ("Steve", "Buscemi"): ("1957-12-13", None),
    ("Quentin", "Tarantino"): ("1963-03-27", None),
    ("Roger", "Avary"): ("1965-08-23", None),
    ("John", "Travolta"): ("1954-02-18", None),
    ("Samuel L.", "Jackson"): ("1948-12-21", None),
    ("Uma", "Thurman"): ("1970-04-29", None),
    ("Albert", "Brooks"): ("1947-07-22", None),
    ("Ellen", "DeGeneres"): ("1958-01-26", None),
    ("Frank", "Darabont"): ("1959-01-28", None),
    ("Tim", "Robbins"): ("1958-10-16", None),
    ("Morgan", "Freeman"): ("1937-06-01", None),
    ("Ridley", "Scott"): ("1937-11-30", None),
    ("Dan", "O'Bannon"): ("1946-09-30", "2009-12-17"),
    ("Sigourney", "Weaver"): ("1949-10-08", None),
    ("Tom", "Skerritt"): ("1933-08-25", None),
    ("John", "Hurt"): ("1940-01-22", "2017-01-25"),
    ("Alfred", "Hitchcock"): ("1899-08-13", "1980-04-29"),
    ("Joseph", "Stefano"): ("1922-05-05", "2006-08-25"),
    ("Anthony", "Perkins"): ("1932-04-04", "1992-09-12"),
    ("Janet", "Leigh"): ("1927-07-06", "2004-10-03"),
    ("Vera", "Miles"): ("1929-08-23", None),
    ("Stanley", "Kubrick"): ("1928-07-26", "1999-03-07"),
    ("Arthur C.", "Clarke"): ("1917-12-16", "2008-03-19"),
    ("Keir", "Dullea"): ("1936-05-30", None),
    ("Gary", "Lockwood"): ("1937-02-21", None),
}

# title, year, rating, runtime (min), plot, director, writers, [(actor, role name)]
MOVIES = [
    ("The Godfather", 1972, R, 175,
     "The head of a New York Mafia family hands control of his empire to his youngest son.",
     ("Francis Ford", "Coppola"), [("Mario", "Puzo"), ("Francis Ford", "Coppola")],
     [(("Marlon", "Brando"), "Vito Corleone"), (("Al", "Pacino"), "Michael Corleone"),
      (("James", "Caan"), "Sonny Corleone")]),
    ("Casablanca", 1942, PG, 102,
     "In wartime Casablanca, a nightclub owner must decide whether to help his former lover "
     "and her husband escape the Nazis.",
     ("Michael", "Curtiz"), [("Julius J.", "Epstein"), ("Philip G.", "Epstein"), ("Howard", "Koch")],
     [(("Humphrey", "Bogart"), "Rick Blaine"), (("Ingrid", "Bergman"), "Ilsa Lund"),
      (("Claude", "Rains"), "Captain Louis Renault")]),
    ("Jaws", 1975, PG, 124,
     "A police chief, a marine biologist and a fisherman hunt a great white shark that is "
     "attacking swimmers off a summer resort island.",
     ("Steven", "Spielberg"), [("Peter", "Benchley"), ("Carl", "Gottlieb")],
     [(("Roy", "Scheider"), "Martin Brody"), (("Robert", "Shaw"), "Quint"),
      (("Richard", "Dreyfuss"), "Matt Hooper")]),
    ("Star Wars", 1977, PG, 121,
     "A farm boy joins a rebel princess, a smuggler and an old Jedi Knight against the "
     "Galactic Empire.",
     ("George", "Lucas"), [("George", "Lucas")],
     [(("Mark", "Hamill"), "Luke Skywalker"), (("Harrison", "Ford"), "Han Solo"),
      (("Carrie", "Fisher"), "Princess Leia Organa")]),
    ("Raiders of the Lost Ark", 1981, PG, 115,
     "An archaeologist races Nazi agents to find the Ark of the Covenant.",
     ("Steven", "Spielberg"), [("Lawrence", "Kasdan"), ("George", "Lucas")],
     [(("Harrison", "Ford"), "Indiana Jones"), (("Karen", "Allen"), "Marion Ravenwood")]),
    ("E.T. the Extra-Terrestrial", 1982, PG, 115,
     "A boy befriends an alien stranded on Earth and helps him get home.",
     ("Steven", "Spielberg"), [("Melissa", "Mathison")],
     [(("Henry", "Thomas"), "Elliott"), (("Drew", "Barrymore"), "Gertie")]),
    ("Back to the Future", 1985, PG, 116,
     "A teenager is sent thirty years into the past in a time-travelling DeLorean built by "
     "his scientist friend.",
     ("Robert", "Zemeckis"), [("Robert", "Zemeckis"), ("Bob", "Gale")],
     [(("Michael J.", "Fox"), "Marty McFly"), (("Christopher", "Lloyd"), "Dr. Emmett Brown"),
      (("Lea", "Thompson"), "Lorraine Baines")]),
    ("Toy Story", 1995, G, 81,
     "A pull-string cowboy doll feels threatened when a space ranger action figure becomes "
     "his owner's favourite toy.",
     ("John", "Lasseter"), [("Joss", "Whedon"), ("Andrew", "Stanton")],
     [(("Tom", "Hanks"), "Woody"), (("Tim", "Allen"), "Buzz Lightyear")]),
    ("Fargo", 1996, R, 98,
     "A car salesman's plan to have his wife kidnapped goes wrong, and a pregnant police "
     "chief investigates.",
     ("Joel", "Coen"), [("Joel", "Coen"), ("Ethan", "Coen")],
     [(("Frances", "McDormand"), "Marge Gunderson"), (("William H.", "Macy"), "Jerry Lundegaard"),
      (("Steve", "Buscemi"), "Carl Showalter")]),
    ("Pulp Fiction", 1994, R, 154,
     "Interlocking stories of two hit men, a boxer and a gangster's wife in Los Angeles.",
     ("Quentin", "Tarantino"), [("Quentin", "Tarantino"), ("Roger", "Avary")],
     [(("John", "Travolta"), "Vincent Vega"), (("Samuel L.", "Jackson"), "Jules Winnfield"),
      (("Uma", "Thurman"), "Mia Wallace")]),
    ("Finding Nemo", 2003, G, 100,
     "A clownfish crosses the ocean to find his son, who was taken by a diver.",
     ("Andrew", "Stanton"), [("Andrew", "Stanton")],
     [(("Albert", "Brooks"), "Marlin"), (("Ellen", "DeGeneres"), "Dory")]),
    ("The Shawshank Redemption", 1994, R, 142,
     "A banker sentenced to life in prison for murder befriends a fellow inmate over two "
     "decades.",
     ("Frank", "Darabont"), [("Frank", "Darabont")],
     [(("Tim", "Robbins"), "Andy Dufresne"), (("Morgan", "Freeman"), "Ellis Boyd 'Red' Redding")]),
    ("Alien", 1979, R, 117,
     "The crew of a commercial spaceship is hunted by a deadly alien creature.",
     ("Ridley", "Scott"), [("Dan", "O'Bannon")],
     [(("Sigourney", "Weaver"), "Ellen Ripley"), (("Tom", "Skerritt"), "Dallas"),
      (("John", "Hurt"), "Kane")]),
    ("Psycho", 1960, R, 109,
     "A secretary on the run with stolen money stops at a remote motel run by a disturbed "
     "young man.",
     ("Alfred", "Hitchcock"), [("Joseph", "Stefano")],
     [(("Anthony", "Perkins"), "Norman Bates"), (("Janet", "Leigh"), "Marion Crane"),
      (("Vera", "Miles"), "Lila Crane")]),
    ("2001: A Space Odyssey", 1968, G, 142,
     "A voyage to Jupiter follows the discovery of a mysterious black monolith.",
     ("Stanley", "Kubrick"), [("Stanley", "Kubrick"), ("Arthur C.", "Clarke")],
     [(("Keir", "Dullea"), "Dr. David Bowman"), (("Gary", "Lockwood"), "Dr. Frank Poole")]),
]


def _date(value):
    return datetime.date.fromisoformat(value) if value else None


class Command(BaseCommand):
    help = "Load a small sample catalogue of well-known films (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing if the database already holds any movie.",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        if options["if_empty"] and Movie.objects.exists():
            self.stdout.write("Movies already present; --if-empty given, so nothing loaded.")
            return

        counts = {"people": 0, "movies": 0, "roles": 0, "writer credits": 0}
        people = {}

        def person(key):
            if key not in people:
                born, died = PEOPLE[key]
                people[key], created = Person.objects.get_or_create(
                    first_name=key[0],
                    last_name=key[1],
                    defaults={"born": _date(born), "died": _date(died)},
                )
                counts["people"] += created
            return people[key]

        for title, year, rating, runtime, plot, director, writers, cast in MOVIES:
            movie, created = Movie.objects.get_or_create(
                title=title,
                year=year,
                defaults={
                    "rating": rating,
                    "runtime": runtime,
                    "plot": plot,
                    "director": person(director),
                },
            )
            counts["movies"] += created
            existing_writers = set(movie.writers.values_list("pk", flat=True))
            for writer in writers:
                writer_obj = person(writer)
                if writer_obj.pk not in existing_writers:
                    movie.writers.add(writer_obj)
                    counts["writer credits"] += 1
            for actor, role_name in cast:
                _, created = Role.objects.get_or_create(
                    movie=movie, person=person(actor), name=role_name
                )
                counts["roles"] += created

        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        if any(counts.values()):
            self.stdout.write(self.style.SUCCESS(f"Sample catalogue loaded: created {summary}."))
        else:
            self.stdout.write("Sample catalogue already loaded: nothing new created.")
