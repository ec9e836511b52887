{#- Parsing rules for the raw BAAC encodings. Each is a macro so that the staging models
    and the dbt unit tests exercise the same SQL. -#}

{#- The accident year of an accident number: Num_Acc is the 4-digit year followed by an
    8-digit serial (Python: ml.baac.accident_year). -#}
{% macro accident_year_from_num_acc(num_acc) -%}
    cast({{ integer_divide(num_acc, 100000000) }} as integer)
{%- endmacro %}

{#- Four-digit year from `an` (2-digit in 2005-2018, 4-digit in some later files). -#}
{% macro four_digit_year(an) -%}
    case when {{ an }} < 100 then 2000 + {{ an }} else {{ an }} end
{%- endmacro %}

{#- `hrmn` is HHMM as an integer without leading zeros (745 = 07:45, 30 = 00:30). 00:00 is
    never written: midnight is `1` (in 2013, `1` occurs 149 times like the round times 01:00
    and 02:00, 140 and 149, while other odd minutes after midnight occur about twice). -#}
{% macro hour_from_hrmn(hrmn) -%}
    case
        when {{ hrmn }} = 1 then 0
        when {{ hrmn }} between 0 and 2359 and {{ hrmn }} % 100 < 60 then {{ integer_divide(hrmn, 100) }}
    end
{%- endmacro %}

{% macro minute_from_hrmn(hrmn) -%}
    case
        when {{ hrmn }} = 1 then 0
        when {{ hrmn }} between 0 and 2359 and {{ hrmn }} % 100 < 60 then {{ hrmn }} % 100
    end
{%- endmacro %}

{#- A whole number written as text ("3", "3.0", "003"); NULL for anything else ("7.5", ""). -#}
{% macro whole_number(raw) -%}
    case
        when {{ try_cast_double(raw) }} = trunc({{ try_cast_double(raw) }})
            then cast({{ try_cast_double(raw) }} as integer)
    end
{%- endmacro %}

{#- Coordinates are integers in 1e-5 degrees ("5051199", Kaggle "4873910.0"); 0, empty and
    junk such as "-" mean not recorded. -#}
{% macro degrees_from_raw(raw) -%}
    nullif({{ try_cast_double(raw) }}, 0) / 100000.0
{%- endmacro %}

{#- The files give overseas coordinates without their minus sign (Réunion 2093729 is
    20.93729 S; Guadeloupe 6172897 is 61.72897 W): south of the equator for Réunion (974)
    and Mayotte (976), west of Greenwich for Guadeloupe (971), Martinique (972), Guyane
    (973) and Saint-Pierre-et-Miquelon (975). A sign already there is kept. -#}
{% macro signed_latitude(latitude, department) -%}
    case when {{ department }} in ('974', '976') then -abs({{ latitude }}) else {{ latitude }} end
{%- endmacro %}

{% macro signed_longitude(longitude, department) -%}
    case when {{ department }} in ('971', '972', '973', '975') then -abs({{ longitude }}) else {{ longitude }} end
{%- endmacro %}

{#- The files store the INSEE département number times ten ("590" = 59, "10" or "010" = 01),
    Corsica as 201/202 (2A/2B), overseas as their 3-digit code (971). The Kaggle copy may
    write "590.0". -#}
{% macro department_code(dep_raw) -%}
    {%- set number = try_cast_double(dep_raw) %}
    case
        when {{ number }} = 201 then '2A'
        when {{ number }} = 202 then '2B'
        when {{ number }} >= 970 then cast(cast({{ number }} as integer) as varchar)
        when {{ number }} >= 10
            then lpad(cast({{ integer_divide('cast(' ~ number ~ ' as integer)', 10) }} as varchar), 2, '0')
    end
{%- endmacro %}

{#- `grav` codes are not ordered (2 = killed). Severity is: 1 unhurt < 2 light injury
    < 3 hospitalised < 4 killed. -#}
{% macro severity_from_grav(grav) -%}
    case {{ grav }} when 1 then 1 when 4 then 2 when 3 then 3 when 2 then 4 end
{%- endmacro %}

{#- Severe = hospitalised or killed (Python: ml.baac.SEVERE_CLASSES). -#}
{% macro is_severe(severity) -%}
    ({{ severity }} >= 3)
{%- endmacro %}

{#- `secu` is two digits: equipment type then whether it was used (11 = belt, used).
    The undocumented one-digit codes (1, 2, 3, 9) and 10/20 give the equipment only. -#}
{% macro safety_equipment_from_secu(secu) -%}
    case
        when {{ secu }} between 11 and 99 and {{ secu }} % 10 between 1 and 3 then {{ integer_divide(secu, 10) }}
        when {{ secu }} in (10, 20) then {{ integer_divide(secu, 10) }}
        when {{ secu }} in (1, 2, 3, 9) then {{ secu }}
    end
{%- endmacro %}

{% macro safety_equipment_use_from_secu(secu) -%}
    case when {{ secu }} between 11 and 99 and {{ secu }} % 10 between 1 and 3 then {{ secu }} % 10 end
{%- endmacro %}
