"""Fixed vocabularies: Salesforce profiles (the app roles), licences, brands, departments, titles.

App roles are Salesforce profiles by Name, because that is how Entra's Salesforce app works:
it imports the org's profiles as app roles and ``SingleAppRoleAssignment`` turns the one role
into ``ProfileName``. Custom profiles ("Sales Manager", "Customer Success Agent") are included
because "custom profiles not showing up as roles" is what users of the real integration hit.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"

SALESFORCE_LICENCE = "Salesforce"
PLATFORM_LICENCE = "Salesforce Platform"
CHATTER_FREE_LICENCE = "Chatter Free"
LICENCES = (SALESFORCE_LICENCE, PLATFORM_LICENCE, CHATTER_FREE_LICENCE)


@dataclass(frozen=True)
class Profile:
    name: str
    licence: str
    weight: float
    """Share among directly assigned users; 0 for profiles that are not app roles."""
    custom: bool = False
    app_role: bool = True


PROFILES: tuple[Profile, ...] = (
    Profile("Standard User", SALESFORCE_LICENCE, 40),
    Profile("Chatter Free User", CHATTER_FREE_LICENCE, 18),
    Profile("Sales Manager", SALESFORCE_LICENCE, 8, custom=True),
    Profile("Marketing User", SALESFORCE_LICENCE, 8),
    Profile("Read Only", SALESFORCE_LICENCE, 7),
    Profile("Solution Manager", SALESFORCE_LICENCE, 5),
    Profile("Standard Platform User", PLATFORM_LICENCE, 8),
    Profile("Customer Success Agent", SALESFORCE_LICENCE, 5, custom=True),
    Profile("System Administrator", SALESFORCE_LICENCE, 1),
    # Profiles the org has but that are not offered as app roles.
    Profile("Contract Manager", SALESFORCE_LICENCE, 0, app_role=False),
    Profile("Minimum Access - Salesforce", SALESFORCE_LICENCE, 0, app_role=False),
)

ROLES: tuple[Profile, ...] = tuple(p for p in PROFILES if p.app_role)
"""App roles, by index; plans refer to roles by their index in this tuple."""
DEFAULT_ROLE = 255
"""Role index standing for the default access role (no profile behind it)."""

ROLE_INDEX = {role.name: i for i, role in enumerate(ROLES)}
STANDARD = ROLE_INDEX["Standard User"]
CHATTER_FREE = ROLE_INDEX["Chatter Free User"]
SYSTEM_ADMINISTRATOR = ROLE_INDEX["System Administrator"]

BRANDS: tuple[str, ...] = (
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Adatum",
    "Tailspin",
    "Woodgrove",
    "Litware",
    "Proseware",
    "Wingtip",
    "Lucerne",
    "Coho",
    "Relecloud",
)

DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "Sales": ("Account Executive", "Sales Development Representative", "Regional Sales Director", "Sales Engineer"),
    "Marketing": ("Marketing Manager", "Campaign Specialist", "Content Strategist", "Head of Brand"),
    "Customer Success": ("Customer Success Manager", "Support Engineer", "Onboarding Specialist"),
    "Finance": ("Financial Analyst", "Controller", "Accounts Payable Clerk", "Chief Financial Officer"),
    "Human Resources": ("HR Business Partner", "Recruiter", "Payroll Specialist"),
    "Engineering": ("Software Engineer", "Senior Software Engineer", "Engineering Manager", "QA Engineer"),
    "IT": ("Systems Administrator", "Salesforce Administrator", "Service Desk Analyst", "IT Manager"),
    "Legal": ("Legal Counsel", "Paralegal", "Compliance Officer"),
    "Operations": ("Operations Manager", "Logistics Coordinator", "Business Analyst"),
    "Product Management": ("Product Manager", "Product Owner", "UX Designer"),
    "Research & Development": ("Research Scientist", "Lab Technician", "R&D Director"),
}
DEPARTMENT_NAMES = tuple(DEPARTMENTS)

EMPLOYEE_TYPES: tuple[tuple[str | None, float], ...] = (
    ("Employee", 0.8),
    ("Contractor", 0.1),
    ("Consultant", 0.04),
    ("Vendor", 0.03),
    (None, 0.03),
)

REGIONS = ("Global", "EMEA", "AMER", "APAC", "DACH", "Nordics", "LATAM", "France", "Iberia", "Japan", "ANZ")
TEAMS = ("North", "South", "East", "West", "Central", "Enterprise", "Mid-Market", "SMB", "Public Sector", "Partners")
UNASSIGNED_GROUP_NAMES = (
    "All Contractors",
    "Alumni Network",
    "Project Phoenix",
    "Works Council",
    "Parking Permits",
    "Book Club",
    "Green Team",
    "Hackathon 2025",
)
